namespace Trellis.ZooKeeper;

/// <summary>The server's error codes (KeeperException.Code), numbered as on the wire.</summary>
public enum ErrorCode
{
    Ok = 0,
    /// <summary>Server error.</summary>
    SystemError = -1,
    /// <summary>A runtime inconsistency was found.</summary>
    RuntimeInconsistency = -2,
    /// <summary>A data inconsistency was found.</summary>
    DataInconsistency = -3,
    /// <summary>Connection to the server was lost.</summary>
    ConnectionLoss = -4,
    /// <summary>Error while marshalling or unmarshalling data.</summary>
    MarshallingError = -5,
    /// <summary>Operation is not implemented by the server.</summary>
    Unimplemented = -6,
    /// <summary>Operation timed out.</summary>
    OperationTimeout = -7,
    /// <summary>Invalid arguments.</summary>
    BadArguments = -8,
    /// <summary>Unknown session.</summary>
    UnknownSession = -12,
    /// <summary>No quorum of the new config is connected.</summary>
    NewConfigNoQuorum = -13,
    /// <summary>Another reconfiguration is in progress.</summary>
    ReconfigInProgress = -14,
    /// <summary>API error.</summary>
    ApiError = -100,
    /// <summary>No node.</summary>
    NoNode = -101,
    /// <summary>Not authorised.</summary>
    NoAuth = -102,
    /// <summary>Version mismatch.</summary>
    BadVersion = -103,
    /// <summary>Ephemeral nodes may not have children.</summary>
    NoChildrenForEphemerals = -108,
    /// <summary>Node already exists.</summary>
    NodeExists = -110,
    /// <summary>Node has children.</summary>
    NotEmpty = -111,
    /// <summary>Session expired.</summary>
    SessionExpired = -112,
    /// <summary>Invalid callback.</summary>
    InvalidCallback = -113,
    /// <summary>Invalid ACL.</summary>
    InvalidAcl = -114,
    /// <summary>Authentication failed.</summary>
    AuthFailed = -115,
    /// <summary>Session moved to another server.</summary>
    SessionMoved = -118,
    /// <summary>State-changing request sent to a read-only server.</summary>
    NotReadOnly = -119,
    /// <summary>Ephemeral node on a local session.</summary>
    EphemeralOnLocalSession = -120,
    /// <summary>No such watcher.</summary>
    NoWatcher = -121,
    /// <summary>Request timed out.</summary>
    RequestTimeout = -122,
    /// <summary>Reconfiguration is disabled.</summary>
    ReconfigDisabled = -123,
    /// <summary>Session closed: SASL authentication required.</summary>
    SessionClosedRequireSaslAuth = -124,
    /// <summary>Quota exceeded.</summary>
    QuotaExceeded = -125,
    /// <summary>Request throttled.</summary>
    Throttled = -127,
}

/// <summary>
/// A ZooKeeper operation failed. Each server error code has its own subclass
/// (<see cref="NoNodeException"/>, <see cref="NodeExistsException"/>, …); <see cref="Create"/> maps a code to it.
/// </summary>
public class KeeperException : Exception
{
    public KeeperException(ErrorCode code, string? path, string? detail = null)
        : base(Describe(code, path, detail))
    {
        Code = code;
        Path = path;
    }

    public ErrorCode Code { get; }

    /// <summary>The node the failed operation was about, when there is one (relative to the chroot).</summary>
    public string? Path { get; }

    /// <summary>For a failed multi: each operation's outcome (the failing one and those rolled back carry errors).</summary>
    public IReadOnlyList<OpResult>? Results { get; internal set; }

    public static KeeperException Create(ErrorCode code, string? path, string? detail = null) => code switch
    {
        ErrorCode.SystemError => new SystemErrorException(path, detail),
        ErrorCode.RuntimeInconsistency => new RuntimeInconsistencyException(path, detail),
        ErrorCode.DataInconsistency => new DataInconsistencyException(path, detail),
        ErrorCode.ConnectionLoss => new ConnectionLossException(path, detail),
        ErrorCode.MarshallingError => new MarshallingErrorException(path, detail),
        ErrorCode.Unimplemented => new UnimplementedException(path, detail),
        ErrorCode.OperationTimeout => new OperationTimeoutException(path, detail),
        ErrorCode.BadArguments => new BadArgumentsException(path, detail),
        ErrorCode.UnknownSession => new UnknownSessionException(path, detail),
        ErrorCode.NewConfigNoQuorum => new NewConfigNoQuorumException(path, detail),
        ErrorCode.ReconfigInProgress => new ReconfigInProgressException(path, detail),
        ErrorCode.ApiError => new ApiErrorException(path, detail),
        ErrorCode.NoNode => new NoNodeException(path, detail),
        ErrorCode.NoAuth => new NoAuthException(path, detail),
        ErrorCode.BadVersion => new BadVersionException(path, detail),
        ErrorCode.NoChildrenForEphemerals => new NoChildrenForEphemeralsException(path, detail),
        ErrorCode.NodeExists => new NodeExistsException(path, detail),
        ErrorCode.NotEmpty => new NotEmptyException(path, detail),
        ErrorCode.SessionExpired => new SessionExpiredException(path, detail),
        ErrorCode.InvalidCallback => new InvalidCallbackException(path, detail),
        ErrorCode.InvalidAcl => new InvalidAclException(path, detail),
        ErrorCode.AuthFailed => new AuthFailedException(path, detail),
        ErrorCode.SessionMoved => new SessionMovedException(path, detail),
        ErrorCode.NotReadOnly => new NotReadOnlyException(path, detail),
        ErrorCode.EphemeralOnLocalSession => new EphemeralOnLocalSessionException(path, detail),
        ErrorCode.NoWatcher => new NoWatcherException(path, detail),
        ErrorCode.RequestTimeout => new RequestTimeoutException(path, detail),
        ErrorCode.ReconfigDisabled => new ReconfigDisabledException(path, detail),
        ErrorCode.SessionClosedRequireSaslAuth => new SessionClosedRequireSaslAuthException(path, detail),
        ErrorCode.QuotaExceeded => new QuotaExceededException(path, detail),
        ErrorCode.Throttled => new ThrottledException(path, detail),
        _ => new KeeperException(code, path, detail),
    };

    private static string Describe(ErrorCode code, string? path, string? detail)
    {
        var text = code.ToString();
        if (path is not null)
        {
            text += $" for {path}";
        }

        return detail is null ? text : $"{text}: {detail}";
    }
}

/// <summary>Server error.</summary>
public sealed class SystemErrorException(string? path, string? detail = null) : KeeperException(ErrorCode.SystemError, path, detail);

/// <summary>A runtime inconsistency was found.</summary>
public sealed class RuntimeInconsistencyException(string? path, string? detail = null) : KeeperException(ErrorCode.RuntimeInconsistency, path, detail);

/// <summary>A data inconsistency was found.</summary>
public sealed class DataInconsistencyException(string? path, string? detail = null) : KeeperException(ErrorCode.DataInconsistency, path, detail);

/// <summary>
/// The connection dropped before the reply came. For a write that was already sent, the outcome is
/// unknown (<see cref="MayHaveBeenApplied"/>): check the node before retrying, never assume it failed.
/// </summary>
public sealed class ConnectionLossException(string? path, string? detail = null) : KeeperException(ErrorCode.ConnectionLoss, path, detail)
{
    /// <summary>True when a state-changing request reached the wire before the connection dropped.</summary>
    public bool MayHaveBeenApplied { get; init; }
}

/// <summary>Error while marshalling or unmarshalling data.</summary>
public sealed class MarshallingErrorException(string? path, string? detail = null) : KeeperException(ErrorCode.MarshallingError, path, detail);

/// <summary>Operation is not implemented by the server.</summary>
public sealed class UnimplementedException(string? path, string? detail = null) : KeeperException(ErrorCode.Unimplemented, path, detail);

/// <summary>Operation timed out.</summary>
public sealed class OperationTimeoutException(string? path, string? detail = null) : KeeperException(ErrorCode.OperationTimeout, path, detail);

/// <summary>Invalid arguments.</summary>
public sealed class BadArgumentsException(string? path, string? detail = null) : KeeperException(ErrorCode.BadArguments, path, detail);

/// <summary>Unknown session.</summary>
public sealed class UnknownSessionException(string? path, string? detail = null) : KeeperException(ErrorCode.UnknownSession, path, detail);

/// <summary>No quorum of the new config is connected.</summary>
public sealed class NewConfigNoQuorumException(string? path, string? detail = null) : KeeperException(ErrorCode.NewConfigNoQuorum, path, detail);

/// <summary>Another reconfiguration is in progress.</summary>
public sealed class ReconfigInProgressException(string? path, string? detail = null) : KeeperException(ErrorCode.ReconfigInProgress, path, detail);

/// <summary>API error.</summary>
public sealed class ApiErrorException(string? path, string? detail = null) : KeeperException(ErrorCode.ApiError, path, detail);

/// <summary>No node.</summary>
public sealed class NoNodeException(string? path, string? detail = null) : KeeperException(ErrorCode.NoNode, path, detail);

/// <summary>Not authorised.</summary>
public sealed class NoAuthException(string? path, string? detail = null) : KeeperException(ErrorCode.NoAuth, path, detail);

/// <summary>Version mismatch.</summary>
public sealed class BadVersionException(string? path, string? detail = null) : KeeperException(ErrorCode.BadVersion, path, detail);

/// <summary>Ephemeral nodes may not have children.</summary>
public sealed class NoChildrenForEphemeralsException(string? path, string? detail = null) : KeeperException(ErrorCode.NoChildrenForEphemerals, path, detail);

/// <summary>Node already exists.</summary>
public sealed class NodeExistsException(string? path, string? detail = null) : KeeperException(ErrorCode.NodeExists, path, detail);

/// <summary>Node has children.</summary>
public sealed class NotEmptyException(string? path, string? detail = null) : KeeperException(ErrorCode.NotEmpty, path, detail);

/// <summary>Session expired.</summary>
public sealed class SessionExpiredException(string? path, string? detail = null) : KeeperException(ErrorCode.SessionExpired, path, detail);

/// <summary>Invalid callback.</summary>
public sealed class InvalidCallbackException(string? path, string? detail = null) : KeeperException(ErrorCode.InvalidCallback, path, detail);

/// <summary>Invalid ACL.</summary>
public sealed class InvalidAclException(string? path, string? detail = null) : KeeperException(ErrorCode.InvalidAcl, path, detail);

/// <summary>Authentication failed.</summary>
public sealed class AuthFailedException(string? path, string? detail = null) : KeeperException(ErrorCode.AuthFailed, path, detail);

/// <summary>Session moved to another server.</summary>
public sealed class SessionMovedException(string? path, string? detail = null) : KeeperException(ErrorCode.SessionMoved, path, detail);

/// <summary>State-changing request sent to a read-only server.</summary>
public sealed class NotReadOnlyException(string? path, string? detail = null) : KeeperException(ErrorCode.NotReadOnly, path, detail);

/// <summary>Ephemeral node on a local session.</summary>
public sealed class EphemeralOnLocalSessionException(string? path, string? detail = null) : KeeperException(ErrorCode.EphemeralOnLocalSession, path, detail);

/// <summary>No such watcher.</summary>
public sealed class NoWatcherException(string? path, string? detail = null) : KeeperException(ErrorCode.NoWatcher, path, detail);

/// <summary>Request timed out.</summary>
public sealed class RequestTimeoutException(string? path, string? detail = null) : KeeperException(ErrorCode.RequestTimeout, path, detail);

/// <summary>Reconfiguration is disabled.</summary>
public sealed class ReconfigDisabledException(string? path, string? detail = null) : KeeperException(ErrorCode.ReconfigDisabled, path, detail);

/// <summary>Session closed: SASL authentication required.</summary>
public sealed class SessionClosedRequireSaslAuthException(string? path, string? detail = null) : KeeperException(ErrorCode.SessionClosedRequireSaslAuth, path, detail);

/// <summary>Quota exceeded.</summary>
public sealed class QuotaExceededException(string? path, string? detail = null) : KeeperException(ErrorCode.QuotaExceeded, path, detail);

/// <summary>Request throttled.</summary>
public sealed class ThrottledException(string? path, string? detail = null) : KeeperException(ErrorCode.Throttled, path, detail);

/// <summary>The server sent bytes that are not a valid reply, or a reply out of order: the connection is dropped.</summary>
public sealed class ZooKeeperProtocolException(string message) : Exception(message);
