using System.Net.Sockets;
using Trellis.Thrift.Buffers;

namespace Trellis.Rpc;

/// <summary>
/// Batched writes to one socket: frames are appended under a lock to a pending buffer; one sender at a time swaps
/// it out and sends everything gathered so far in one system call. Under load many frames share a send; alone, a
/// frame goes out at once on the caller's thread. Over a TLS connection it writes the encrypting stream instead of the
/// socket (the plain path stays a direct socket send).
/// </summary>
internal sealed class SendQueue : IDisposable
{
    private readonly Socket? _socket;
    private readonly Stream? _stream;
    private readonly Action<Exception> _onBroken;
    private readonly object _lock = new();
    // buffers are rented on the first frame and given back whenever the queue runs empty: an idle connection holds none
    private PooledBufferWriter _pending = new(8192, rentNow: false);
    private PooledBufferWriter? _spare = new(8192, rentNow: false);
    private bool _sending;
    private bool _closed;

    public SendQueue(Socket socket, Action<Exception> onBroken)
    {
        _socket = socket;
        _onBroken = onBroken;
    }

    /// <summary>Writes to <paramref name="stream"/> (a TLS connection's <see cref="System.Net.Security.SslStream"/>).</summary>
    public SendQueue(Stream stream, Action<Exception> onBroken)
    {
        _stream = stream;
        _onBroken = onBroken;
    }

    /// <summary>
    /// Appends one whole frame built by <paramref name="write"/>; false when the queue is closed. A throwing writer
    /// leaves nothing behind. With <paramref name="defer"/> an idle queue does not send on the caller's thread but
    /// hands the send to the thread pool, so frames that arrive meanwhile (other callers' calls, read from other
    /// sockets by the same I/O thread) share its one system call; for a caller that knows the connection is busy.
    /// </summary>
    public bool Write<TState>(TState state, WriteFrame<TState> write, bool defer = false)
    {
        bool start;
        lock (_lock)
        {
            if (_closed)
            {
                return false;
            }

            var mark = _pending.WrittenCount;
            try
            {
                write(_pending, state);
            }
            catch
            {
                _pending.Truncate(mark);
                throw;
            }

            start = !_sending;
            _sending = true;
        }

        if (start)
        {
            if (defer)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static q => _ = q.SendLoopAsync(), this, preferLocal: false);
            }
            else
            {
                _ = SendLoopAsync();
            }
        }

        return true;
    }

    public delegate void WriteFrame<TState>(PooledBufferWriter output, TState state);

    private async Task SendLoopAsync()
    {
        try
        {
            while (true)
            {
                PooledBufferWriter batch;
                lock (_lock)
                {
                    if (_closed || _pending.WrittenCount == 0)
                    {
                        _sending = false;
                        if (!_closed)
                        {
                            _pending.Release();
                            _spare?.Release();
                        }

                        return;
                    }

                    batch = _pending;
                    _pending = _spare ?? new PooledBufferWriter(8192, rentNow: false);
                    _spare = null;
                }

                var memory = batch.WrittenMemory;
                if (_stream is not null)
                {
                    await _stream.WriteAsync(memory).ConfigureAwait(false); // one TLS write: all of it
                }
                else
                {
                    while (!memory.IsEmpty)
                    {
                        var sent = await _socket!.SendAsync(memory, SocketFlags.None).ConfigureAwait(false);
                        memory = memory[sent..];
                    }
                }

                batch.Clear();
                lock (_lock)
                {
                    if (_closed)
                    {
                        batch.Dispose();
                    }
                    else
                    {
                        _spare = batch;
                    }
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            lock (_lock)
            {
                _sending = false;
                _closed = true;
            }

            _onBroken(e);
        }
    }

    /// <summary>Waits (briefly) for what is queued to go out; used by graceful close.</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            lock (_lock)
            {
                if (!_sending || _closed)
                {
                    return;
                }
            }

            await Task.Delay(5).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _closed = true;
            if (!_sending)
            {
                _pending.Dispose();
                _spare?.Dispose();
            }
        }
    }
}
