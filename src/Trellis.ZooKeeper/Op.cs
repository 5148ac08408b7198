using Trellis.ZooKeeper.Jute;
using Trellis.ZooKeeper.Protocol;

namespace Trellis.ZooKeeper;

/// <summary>One operation of a <see cref="ZooKeeperClient.MultiAsync"/> transaction.</summary>
public abstract record Op(string Path)
{
    internal abstract OpCode Code { get; }

    internal virtual void Validate() => PathValidation.Validate(Path);

    internal abstract void Write(JuteWriter w, Func<string, string> toServer);

    public static Op Create(string path, ReadOnlyMemory<byte> data, CreateMode mode = CreateMode.Persistent, IReadOnlyList<Acl>? acl = null) =>
        new CreateOp(path, data, mode, acl ?? Acl.OpenUnsafe);

    public static Op Delete(string path, int version = -1) => new DeleteOp(path, version);

    public static Op SetData(string path, ReadOnlyMemory<byte> data, int version = -1) => new SetDataOp(path, data, version);

    /// <summary>Fails the transaction unless the node has <paramref name="version"/>.</summary>
    public static Op Check(string path, int version) => new CheckOp(path, version);

    private sealed record CreateOp(string Path, ReadOnlyMemory<byte> Data, CreateMode Mode, IReadOnlyList<Acl> Acl) : Op(Path)
    {
        internal override OpCode Code => Mode == CreateMode.Container ? OpCode.CreateContainer : OpCode.Create2;

        internal override void Validate()
        {
            PathValidation.Validate(Path, isSequentialPrefix: Mode.IsSequential());
            if (Mode.IsTtl())
            {
                throw new ArgumentException("TTL nodes cannot be created in a transaction", nameof(Mode));
            }
        }

        internal override void Write(JuteWriter w, Func<string, string> toServer)
        {
            w.String(toServer(Path));
            w.Buffer(Data.Span);
            w.Acls(Acl);
            w.Int((int)Mode);
        }
    }

    private sealed record DeleteOp(string Path, int Version) : Op(Path)
    {
        internal override OpCode Code => OpCode.Delete;

        internal override void Write(JuteWriter w, Func<string, string> toServer)
        {
            w.String(toServer(Path));
            w.Int(Version);
        }
    }

    private sealed record SetDataOp(string Path, ReadOnlyMemory<byte> Data, int Version) : Op(Path)
    {
        internal override OpCode Code => OpCode.SetData;

        internal override void Write(JuteWriter w, Func<string, string> toServer)
        {
            w.String(toServer(Path));
            w.Buffer(Data.Span);
            w.Int(Version);
        }
    }

    private sealed record CheckOp(string Path, int Version) : Op(Path)
    {
        internal override OpCode Code => OpCode.Check;

        internal override void Write(JuteWriter w, Func<string, string> toServer)
        {
            w.String(toServer(Path));
            w.Int(Version);
        }
    }
}

/// <summary>The outcome of one operation of a transaction.</summary>
public abstract record OpResult
{
    public sealed record Created(string Path, Stat? Stat) : OpResult;

    public sealed record Deleted : OpResult;

    public sealed record DataSet(Stat Stat) : OpResult;

    public sealed record Checked : OpResult;

    /// <summary>This operation failed, or was rolled back because another did (<see cref="ErrorCode.RuntimeInconsistency"/>, or <see cref="ErrorCode.Ok"/> for those before the failure).</summary>
    public sealed record Failed(ErrorCode Code) : OpResult;
}
