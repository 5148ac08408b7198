using Microsoft.Extensions.Logging;

namespace Trellis.Rpc;

/// <summary>Why a server or proxy closed a caller's connection (the same words wherever Thrift is taken).</summary>
internal static partial class ConnectionLog
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "closing {Peer}: not Thrift ({Reason})")]
    public static partial void NotThrift(ILogger logger, string peer, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "closing {Peer}: {Reason}")]
    public static partial void BadFrame(ILogger logger, string peer, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "closing {Peer}: {Reason}")]
    public static partial void Timeout(ILogger logger, string peer, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "closing {Peer}: TLS refused: {Reason}")]
    public static partial void TlsRefused(ILogger logger, string peer, string reason);
}
