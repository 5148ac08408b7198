using System.Buffers;
using Trellis.Thrift.Buffers;
using Trellis.Thrift.Services;

namespace Trellis.Thrift.Idl.Tests;

/// <summary>
/// A channel whose "server" is a generated dispatcher in the same process: every call goes through
/// real frames (framing, envelope, seqid, multiplexed name, EXCEPTION replies) in both directions.
/// </summary>
internal sealed class LoopbackChannel(ThriftServiceDispatcher dispatcher, ThriftEncoding encoding, bool multiplexed) : IThriftChannel
{
    private int _seqId;

    public List<string> Wire { get; } = [];

    public async ValueTask CallAsync<TArguments, TResult>(ThriftMethod method, TArguments arguments, TResult result, CancellationToken cancellationToken)
        where TArguments : IThriftWritable
        where TResult : IThriftStruct
    {
        var seqId = Interlocked.Increment(ref _seqId);
        var reply = await ServeAsync(Request(method, TMessageType.Call, seqId, arguments), cancellationToken);
        Assert.NotNull(reply);
        using var decoder = new ThriftFrameDecoder(encoding);
        var buffer = new ReadOnlySequence<byte>(reply);
        Assert.True(decoder.TryReadFrame(ref buffer, out var frame));
        var header = ThriftMessages.Read(frame, result, out var error);
        Assert.Equal(seqId, header.SeqId);
        if (error is not null)
        {
            throw error;
        }

        Assert.Equal(method.Name, header.Name);
    }

    public async ValueTask SendOnewayAsync<TArguments>(ThriftMethod method, TArguments arguments, CancellationToken cancellationToken)
        where TArguments : IThriftWritable
    {
        var reply = await ServeAsync(Request(method, TMessageType.Oneway, Interlocked.Increment(ref _seqId), arguments), cancellationToken);
        Assert.Null(reply);
    }

    private byte[] Request<TArguments>(ThriftMethod method, TMessageType type, int seqId, TArguments arguments)
        where TArguments : IThriftWritable
    {
        var name = multiplexed ? method.MultiplexedName : method.Name;
        Wire.Add(name);
        using var output = new PooledBufferWriter();
        ThriftMessages.Write(output, encoding, new TMessageHeader(name, type, seqId), arguments);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>The server half: what issue 5's server will do per frame.</summary>
    public async Task<byte[]?> ServeAsync(byte[] request, CancellationToken cancellationToken)
    {
        using var decoder = new ThriftFrameDecoder(encoding);
        var buffer = new ReadOnlySequence<byte>(request);
        Assert.True(decoder.TryReadFrame(ref buffer, out var frame));
        var header = ThriftMessages.ReadHeader(frame);
        Assert.True(MultiplexedName.TryParse(header.Name, out var service, out var methodName, out _));
        if (multiplexed)
        {
            Assert.Equal(dispatcher.ServiceName, service);
        }

        using var output = new PooledBufferWriter();
        if (!dispatcher.TryGetInvoker(methodName, out var invoker))
        {
            ThriftMessages.Write(output, encoding, new TMessageHeader(header.Name, TMessageType.Exception, header.SeqId),
                new TApplicationException(TApplicationExceptionType.UnknownMethod, $"unknown method {methodName}"));
            return output.WrittenSpan.ToArray();
        }

        var arguments = invoker.CreateArguments();
        ThriftMessages.Read(frame, arguments, out _);
        IThriftWritable? result;
        try
        {
            result = await invoker.InvokeAsync(arguments, cancellationToken);
        }
        catch (Exception e) when (!invoker.Method.IsOneway)
        {
            ThriftMessages.Write(output, encoding, new TMessageHeader(methodName, TMessageType.Exception, header.SeqId),
                new TApplicationException(TApplicationExceptionType.InternalError, e.Message));
            return output.WrittenSpan.ToArray();
        }

        if (invoker.Method.IsOneway)
        {
            Assert.Null(result);
            return null;
        }

        ThriftMessages.Write(output, encoding, new TMessageHeader(methodName, TMessageType.Reply, header.SeqId), result!);
        return output.WrittenSpan.ToArray();
    }
}
