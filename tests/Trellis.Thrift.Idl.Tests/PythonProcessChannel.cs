using System.Buffers;
using System.Diagnostics;
using Trellis.Testing;
using Trellis.Thrift.Buffers;
using Trellis.Thrift.Services;

namespace Trellis.Thrift.Idl.Tests;

/// <summary>
/// A channel to a live Python server: idl_peer.py's <c>serve</c> mode (Apache's generated Processor)
/// talking over the process's stdin and stdout. Each call writes one request and reads one reply frame.
/// </summary>
internal sealed class PythonProcessChannel : IThriftChannel, IDisposable
{
    private readonly Process _process;
    private readonly ThriftEncoding _encoding;
    private readonly bool _multiplexed;
    private readonly ThriftFrameDecoder _decoder;
    private readonly byte[] _readBuffer = new byte[64 * 1024];
    private byte[] _pending = [];
    private int _seqId;

    public PythonProcessChannel(ThriftEncoding encoding, bool multiplexed)
    {
        _encoding = encoding;
        _multiplexed = multiplexed;
        _decoder = new ThriftFrameDecoder(encoding);
        var framing = encoding.Framing switch { ThriftFraming.Framed => "framed", ThriftFraming.Unframed => "unframed", _ => "header" };
        string[] args = ["--framing", framing, "--protocol", encoding.Protocol == ThriftProtocol.Binary ? "binary" : "compact",
            .. multiplexed ? new[] { "--multiplexed", "Features" } : []];
        _process = Process.Start(PythonPeer.Features.StartInfo("serve", args))!;
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (Stderr) Stderr.Add(e.Data);
            }
        };
        _process.BeginErrorReadLine();
    }

    public List<string> Stderr { get; } = [];

    public async ValueTask CallAsync<TArguments, TResult>(ThriftMethod method, TArguments arguments, TResult result, CancellationToken cancellationToken)
        where TArguments : IThriftWritable
        where TResult : IThriftStruct
    {
        var seqId = Interlocked.Increment(ref _seqId);
        await SendAsync(method, TMessageType.Call, seqId, arguments, cancellationToken);
        var reply = await ReadFrameAsync(cancellationToken);
        var header = ThriftMessages.Read(reply.Frame, result, out var error);
        Assert.Equal(seqId, header.SeqId);
        if (error is not null)
        {
            throw error;
        }

        Assert.Equal(method.Name, header.Name);
    }

    public ValueTask SendOnewayAsync<TArguments>(ThriftMethod method, TArguments arguments, CancellationToken cancellationToken)
        where TArguments : IThriftWritable =>
        new(SendAsync(method, TMessageType.Oneway, Interlocked.Increment(ref _seqId), arguments, cancellationToken));

    private async Task SendAsync<TArguments>(ThriftMethod method, TMessageType type, int seqId, TArguments arguments, CancellationToken cancellationToken)
        where TArguments : IThriftWritable
    {
        using var output = new PooledBufferWriter();
        ThriftMessages.Write(output, _encoding, new TMessageHeader(_multiplexed ? method.MultiplexedName : method.Name, type, seqId), arguments);
        await _process.StandardInput.BaseStream.WriteAsync(output.WrittenMemory, cancellationToken);
        await _process.StandardInput.BaseStream.FlushAsync(cancellationToken);
    }

    private sealed record Reply(ThriftFrame Frame);

    private async Task<Reply> ReadFrameAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        while (true)
        {
            var buffer = new ReadOnlySequence<byte>(_pending);
            if (_decoder.TryReadFrame(ref buffer, out var frame))
            {
                // the frame points into the old array, which is replaced, never changed
                _pending = buffer.ToArray();
                return new Reply(frame);
            }

            var read = await _process.StandardOutput.BaseStream.ReadAsync(_readBuffer, timeout.Token);
            if (read == 0)
            {
                throw new InvalidOperationException("the Python server closed its output: " + string.Join("\n", Stderr));
            }

            _pending = [.. _pending, .. _readBuffer.AsSpan(0, read)];
        }
    }

    /// <summary>Ends the server (end of input) and returns everything it wrote to stderr.</summary>
    public List<string> Finish()
    {
        _process.StandardInput.Close();
        if (!_process.WaitForExit(TimeSpan.FromSeconds(10)))
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.WaitForExit(); // drains the asynchronous stderr reader
        lock (Stderr)
        {
            return [.. Stderr];
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.Close();
                if (!_process.WaitForExit(TimeSpan.FromSeconds(10)))
                {
                    _process.Kill(entireProcessTree: true);
                }
            }
        }
        finally
        {
            _process.Dispose();
            _decoder.Dispose();
        }
    }
}
