using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Trellis.Rpc;
using Trellis.Rpc.Registry;
using Trellis.Thrift;

namespace Trellis.Proxy.Balancer;

/// <summary>What a worker is doing: only <see cref="Ready"/> workers are sent calls.</summary>
public enum WorkerState
{
    /// <summary>Started, not yet accepting on its socket.</summary>
    Starting,

    /// <summary>Takes calls.</summary>
    Ready,

    /// <summary>To be replaced (call or memory limit): takes no new calls, stops once its calls are answered.</summary>
    Retiring,

    /// <summary>Sent SIGTERM (or SIGKILL when stuck), waiting for it to exit.</summary>
    Stopping,

    /// <summary>Exited.</summary>
    Exited,
}

/// <summary>One worker as the admin page and tests see it.</summary>
public sealed record WorkerStatus(string Id, int Pid, WorkerState State, int InFlight, long Calls, bool External);

/// <summary>
/// The balancer's workers and the dispatch of calls to them: each call goes to a ready worker with a free slot
/// (<see cref="BalancerOptions.WorkerPoolSize"/> calls at most per worker, the least busy first); when every slot is
/// taken it waits in one bounded queue, and past it fails at once as overloaded. Started workers are supervised:
/// a crashed one is started again with backoff, one over its call or memory limit is replaced (the new one first, the
/// old one stops once its calls are answered), and one that sits on a call past the call's deadline is killed and
/// replaced, failing only that call.
/// </summary>
internal sealed partial class WorkerPool : IAsyncDisposable
{
    private readonly BalancerOptions _options;
    private readonly ProxyServer _proxy;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    private readonly List<Worker> _workers = [];
    private readonly LinkedList<Waiter> _waiters = new();
    private readonly TaskCompletionSource _firstReady = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _background = [];
    private readonly int[] _crashes;
    private readonly int[] _generations;
    private readonly string _socketDirectory;
    private readonly bool _ownSocketDirectory;
    private Socket? _backListener;
    private int _external;
    private int _next;
    private long _restarts;
    private long _replaced;
    private long _killed;
    private long _overloaded;

    public WorkerPool(BalancerOptions options, ProxyServer proxy, ILogger logger)
    {
        _options = options;
        _proxy = proxy;
        _logger = logger;
        var count = options.Command is null ? 0 : options.Workers;
        _crashes = new int[count];
        _generations = new int[count];
        _ownSocketDirectory = options.SocketDirectory is null;
        _socketDirectory = options.SocketDirectory ?? Directory.CreateTempSubdirectory("trellis-workers-").FullName;
    }

    public string Service => _options.Service;

    /// <summary>Completes when the first worker is ready to take calls.</summary>
    public Task FirstReady => _firstReady.Task;

    public long Restarts => Interlocked.Read(ref _restarts);

    public long Replaced => Interlocked.Read(ref _replaced);

    public long Killed => Interlocked.Read(ref _killed);

    public long Overloaded => Interlocked.Read(ref _overloaded);

    public int Queued
    {
        get
        {
            lock (_lock)
            {
                return _waiters.Count;
            }
        }
    }

    public IReadOnlyList<WorkerStatus> Workers
    {
        get
        {
            lock (_lock)
            {
                return [.. _workers.Select(w => new WorkerStatus(w.Id, w.Pid, w.State, w.InFlight, w.Calls, w.External))];
            }
        }
    }

    public void Start()
    {
        Directory.CreateDirectory(_socketDirectory);
        for (var i = 0; i < _crashes.Length; i++)
        {
            StartWorker(i);
        }

        if (_options.BackAddress is { } back)
        {
            var (socket, bound) = ListenSockets.Bind(back, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
            _backListener = socket;
            LogBackListening(_logger, bound);
            Background(StreamIo.AcceptLoopAsync(socket, bound, AcceptExternal, _stopping.Token));
        }

        if (_options.MaxWorkerMemoryMb > 0 && _crashes.Length > 0)
        {
            Background(WatchMemoryAsync());
        }
    }

    private void Background(Task task)
    {
        lock (_background)
        {
            _background.RemoveAll(t => t.IsCompleted);
            _background.Add(task);
        }
    }

    // ---- dispatch ------------------------------------------------------------------------------------------------

    /// <summary>Sends a call to a worker and returns its reply. Exceptions as for a backend connection (NotOpen: not sent).</summary>
    public async Task<BackendReply> SendAsync(ForwardCall call)
    {
        for (var attempt = 0; ; attempt++)
        {
            var worker = await AcquireAsync(call).ConfigureAwait(false);
            BackendConnection? connection = null;
            var reusable = false;
            try
            {
                connection = Take(worker) ?? await ConnectAsync(worker).ConfigureAwait(false);
                var reply = await connection.SendAsync(call).ConfigureAwait(false);
                reusable = true;
                Counted(worker);
                return reply;
            }
            catch (TTransportException e) when (e.Kind is TTransportErrorKind.NotOpen or TTransportErrorKind.TimedOut && !reusable && connection is null or { IsBroken: true } && attempt < 2
                && Stopwatch.GetTimestamp() < call.Deadline && !_stopping.IsCancellationRequested)
            {
                // not sent (the worker went away between the pick and the send): another worker may take it
                LogNotSent(_logger, worker.Id, e.Message);
                Lost(worker);
            }
            catch (TTransportException) when (connection is { IsBroken: true })
            {
                // sent, and the connection broke under it: this call fails; the worker is not picked again until known alive
                Lost(worker);
                throw;
            }
            catch (TimeoutException)
            {
                // the worker sat on the call past its deadline: a single-threaded worker that does is stuck
                Replace(worker, $"it did not answer {call.Method} within the call's deadline", graceful: false);
                throw;
            }
            finally
            {
                Release(worker, connection, reusable);
            }
        }
    }

    private Task<Worker> AcquireAsync(ForwardCall call)
    {
        Waiter waiter;
        lock (_lock)
        {
            if (_stopping.IsCancellationRequested)
            {
                throw new TTransportException(TTransportErrorKind.NotOpen, $"not sent: the balancer of {Service} is stopping");
            }

            if (PickIdle() is { } idle)
            {
                idle.InFlight++;
                return Task.FromResult(idle);
            }

            if (_waiters.Count >= _options.QueueSize)
            {
                Interlocked.Increment(ref _overloaded);
                throw new TApplicationException(TApplicationExceptionType.InternalError,
                    $"{RpcErrors.OverloadedPrefix}all {Capacity()} worker slots of {Service} are busy and {_waiters.Count} calls are queued; the call was not run");
            }

            var queueLimit = Stopwatch.GetTimestamp() + (long)(_options.QueueTimeout.TotalSeconds * Stopwatch.Frequency);
            waiter = new Waiter(Math.Min(call.Deadline, queueLimit), call.Method) { QueueLimited = queueLimit < call.Deadline };
            _waiters.AddLast(waiter);
        }

        return waiter.Completion.Task;
    }

    /// <summary>Fails queued calls whose wait is over (called by the proxy's deadline sweeper).</summary>
    public void Expire(long now)
    {
        List<Waiter>? late = null;
        lock (_lock)
        {
            for (var node = _waiters.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Deadline <= now)
                {
                    _waiters.Remove(node);
                    (late ??= []).Add(node.Value);
                }

                node = next;
            }
        }

        foreach (var waiter in late ?? [])
        {
            // the call's own deadline passed: a timeout; the queue's limit passed first: refused unrun, like a full queue
            waiter.Completion.TrySetException(waiter.QueueLimited
                ? new TApplicationException(TApplicationExceptionType.InternalError,
                    $"{RpcErrors.OverloadedPrefix}no worker of {Service} became free within {_options.QueueTimeout.TotalMilliseconds:F0} ms (QueueTimeout); the call was not run")
                : new TimeoutException($"no worker of {Service} became free for {waiter.Method} in time"));
        }
    }

    private string Capacity() => $"{_workers.Count(w => w.State == WorkerState.Ready)} × {_options.WorkerPoolSize}";

    /// <summary>A ready worker with a free slot, the least busy first (round robin among equals); under the lock.</summary>
    private Worker? PickIdle()
    {
        Worker? best = null;
        var count = _workers.Count;
        var start = count == 0 ? 0 : (int)((uint)_next++ % (uint)count);
        for (var i = 0; i < count; i++)
        {
            var worker = _workers[(start + i) % count];
            if (worker.State == WorkerState.Ready && !worker.Lost && worker.InFlight < worker.Slots && (best is null || worker.InFlight < best.InFlight))
            {
                best = worker;
            }
        }

        return best;
    }

    /// <summary>
    /// Gives free slots to queued calls; under the lock. The grants are completed by <see cref="Grant"/> after the
    /// lock is released, on the caller's thread: the thread that freed a slot (usually the I/O thread that read the
    /// reply) goes on to send the next call, without a thread-pool hop.
    /// </summary>
    private void HandOff(ref List<(Waiter, Worker)>? granted)
    {
        while (_waiters.First is { } first && PickIdle() is { } worker)
        {
            _waiters.RemoveFirst();
            worker.InFlight++;
            (granted ??= []).Add((first.Value, worker));
        }
    }

    private static void Grant(List<(Waiter Waiter, Worker Worker)>? granted)
    {
        foreach (var (waiter, worker) in granted ?? [])
        {
            waiter.Completion.TrySetResult(worker);
        }
    }

    private BackendConnection? Take(Worker worker)
    {
        lock (_lock)
        {
            while (worker.Idle.TryPop(out var connection))
            {
                if (!connection.IsBroken)
                {
                    return connection;
                }
            }

            return null;
        }
    }

    private async Task<BackendConnection> ConnectAsync(Worker worker)
    {
        if (worker.External)
        {
            throw new TTransportException(TTransportErrorKind.NotOpen, $"not sent: worker {worker.Id} disconnected");
        }

        var connection = await BackendConnection.ConnectAsync(worker.Instance, _proxy.Options, _stopping.Token).ConfigureAwait(false);
        _proxy.Track(connection);
        lock (_lock)
        {
            worker.Connections.Add(connection);
        }

        return connection;
    }

    private void Release(Worker worker, BackendConnection? connection, bool reusable)
    {
        var stop = false;
        List<(Waiter, Worker)>? granted = null;
        lock (_lock)
        {
            worker.InFlight--;
            if (connection is not null)
            {
                if (reusable && !connection.IsBroken && worker.State is WorkerState.Ready or WorkerState.Retiring)
                {
                    worker.Idle.Push(connection);
                }
                else if (!reusable && !connection.IsBroken)
                {
                    // a call that failed on it leaves the connection in an unknown state: do not reuse it
                    connection.Break(new TTransportException(TTransportErrorKind.NotOpen, "the balancer dropped the connection after a failed call"));
                }
            }

            if (worker.State == WorkerState.Retiring && worker.InFlight == 0)
            {
                worker.State = WorkerState.Stopping;
                stop = true;
            }

            HandOff(ref granted);
        }

        if (stop)
        {
            Background(StopProcessAsync(worker, kill: false));
        }

        Grant(granted);
    }

    /// <summary>
    /// A worker refused a connection or dropped one: it is not picked any more. Usually it has died and its exit
    /// starts it again; one still running a second later is broken and is replaced.
    /// </summary>
    private void Lost(Worker worker)
    {
        lock (_lock)
        {
            if (worker.Lost || worker.State != WorkerState.Ready)
            {
                return;
            }

            worker.Lost = true;
        }

        if (worker.External || worker.Process is not { } process)
        {
            return;
        }

        Background(Task.Run(async () =>
        {
            try
            {
                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Replace(worker, "it refuses or drops connections while running", graceful: false);
            }
            catch (InvalidOperationException)
            {
                // exited and disposed
            }
        }));
    }

    private void Counted(Worker worker)
    {
        bool recycle;
        lock (_lock)
        {
            worker.Calls++;
            recycle = _options.MaxRequestsPerWorker > 0 && worker.Calls >= _options.MaxRequestsPerWorker && !worker.External;
        }

        if (recycle)
        {
            Replace(worker, $"it served {worker.Calls} calls (MaxRequestsPerWorker)", graceful: true);
        }
    }

    // ---- supervision ---------------------------------------------------------------------------------------------

    private void StartWorker(int index)
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        var generation = Interlocked.Increment(ref _generations[index]);
        var socket = Path.Combine(_socketDirectory, $"{index}.{generation}.sock");
        TryDelete(socket);
        var command = _options.Command!
            .Replace("{socket}", socket, StringComparison.Ordinal)
            .Replace("{index}", index.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{service}", Service, StringComparison.Ordinal);
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("exec " + command);
        info.Environment["TRELLIS_WORKER_SOCKET"] = socket;
        info.Environment["TRELLIS_WORKER_INDEX"] = index.ToString(CultureInfo.InvariantCulture);
        info.Environment["TRELLIS_SERVICE"] = Service;
        var worker = new Worker($"{index}.{generation}", index, Instance(socket, $"{index}.{generation}"), _options.WorkerPoolSize) { SocketPath = socket };
        try
        {
            worker.Process = Process.Start(info) ?? throw new InvalidOperationException("no process");
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            LogStartFailed(_logger, worker.Id, command, e.Message);
            Background(RestartLaterAsync(index, crashed: true));
            return;
        }

        worker.Pid = worker.Process.Id;
        worker.StartedAt = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            _workers.Add(worker);
        }

        LogStarting(_logger, worker.Id, worker.Pid, command);
        Background(SuperviseAsync(worker));
    }

    private ServiceInstance Instance(string? socket, string id) => new()
    {
        Product = _proxy.Options.Product,
        Service = Service,
        InstanceId = $"worker-{id}",
        Uds = socket,
        Host = socket is null ? "127.0.0.1" : null,
        Framing = _options.WorkerFraming,
        Protocol = _options.WorkerProtocol,
        Multiplexed = _options.WorkerMultiplexed,
    };

    private async Task SuperviseAsync(Worker worker)
    {
        var process = worker.Process!;
        var until = Stopwatch.GetTimestamp() + (long)(_options.StartTimeout.TotalSeconds * Stopwatch.Frequency);
        BackendConnection? first = null;
        while (!process.HasExited && !_stopping.IsCancellationRequested && worker.State == WorkerState.Starting)
        {
            if (File.Exists(worker.SocketPath))
            {
                try
                {
                    first = await BackendConnection.ConnectAsync(worker.Instance, _proxy.Options, _stopping.Token).ConfigureAwait(false);
                    break;
                }
                catch (Exception e) when (e is TTransportException or SocketException or OperationCanceledException)
                {
                    // not accepting yet
                }
            }

            if (Stopwatch.GetTimestamp() > until)
            {
                LogStartTimeout(_logger, worker.Id, _options.StartTimeout.TotalSeconds);
                Signal(worker, kill: true);
                break;
            }

            await Task.Delay(20).ConfigureAwait(false);
        }

        if (first is not null)
        {
            _proxy.Track(first);
            bool ready;
            List<(Waiter, Worker)>? granted = null;
            lock (_lock)
            {
                worker.Connections.Add(first);
                ready = worker.State == WorkerState.Starting;
                if (ready)
                {
                    worker.State = WorkerState.Ready;
                    worker.Idle.Push(first);
                    HandOff(ref granted);
                }
            }

            Grant(granted);

            if (ready)
            {
                var took = Stopwatch.GetElapsedTime(worker.StartedAt).TotalMilliseconds;
                LogReady(_logger, worker.Id, worker.Pid, took);
                _firstReady.TrySetResult();
            }
        }

        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        await ExitedAsync(worker).ConfigureAwait(false);
    }

    private async Task ExitedAsync(Worker worker)
    {
        WorkerState was;
        List<BackendConnection> connections;
        lock (_lock)
        {
            was = worker.State;
            worker.State = WorkerState.Exited;
            _workers.Remove(worker);
            connections = [.. worker.Connections];
            worker.Idle.Clear();
        }

        var exit = worker.Process is { } p ? p.ExitCode : 0;
        foreach (var connection in connections)
        {
            // calls in flight on it fail (they were sent to a worker that is gone); nothing else does
            connection.Break(new TTransportException(TTransportErrorKind.EndOfFile, $"worker {worker.Id} (pid {worker.Pid}) exited with code {exit}"));
            _ = _proxy.RetireAsync(connection);
        }

        if (worker.SocketPath is { } socket)
        {
            TryDelete(socket);
        }

        worker.Process?.Dispose();
        if (was is WorkerState.Stopping or WorkerState.Retiring || _stopping.IsCancellationRequested)
        {
            LogStopped(_logger, worker.Id, worker.Pid, exit);
            return;
        }

        var uptime = Stopwatch.GetElapsedTime(worker.StartedAt);
        LogCrashed(_logger, worker.Id, worker.Pid, exit, uptime.TotalSeconds);
        await RestartLaterAsync(worker.Index, crashed: uptime < TimeSpan.FromSeconds(10)).ConfigureAwait(false);
    }

    private async Task RestartLaterAsync(int index, bool crashed)
    {
        // crashes in a row (each within 10 s of its start) back off: 0.1 s, 0.2 s, 0.4 s … up to MaxRestartDelay
        var crashes = crashed ? Interlocked.Increment(ref _crashes[index]) : Interlocked.Exchange(ref _crashes[index], 1);
        var delay = TimeSpan.FromTicks(Math.Min(_options.MaxRestartDelay.Ticks, _options.RestartDelay.Ticks << Math.Min(crashes - 1, 20)));
        Interlocked.Increment(ref _restarts);
        try
        {
            await Task.Delay(delay, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        StartWorker(index);
    }

    /// <summary>Starts a replacement for <paramref name="worker"/>, then stops it: once its calls are answered (graceful), or at once with SIGKILL.</summary>
    private void Replace(Worker worker, string reason, bool graceful)
    {
        bool stopNow;
        lock (_lock)
        {
            if (worker.State is not (WorkerState.Ready or WorkerState.Starting))
            {
                return;
            }

            worker.State = graceful && worker.InFlight > 0 ? WorkerState.Retiring : WorkerState.Stopping;
            stopNow = worker.State == WorkerState.Stopping;
        }

        if (graceful)
        {
            Interlocked.Increment(ref _replaced);
            LogRecycling(_logger, worker.Id, worker.Pid, reason);
        }
        else
        {
            Interlocked.Increment(ref _killed);
            LogKilling(_logger, worker.Id, worker.Pid, reason);
        }

        if (!worker.External)
        {
            StartWorker(worker.Index);
        }

        if (stopNow)
        {
            Background(StopProcessAsync(worker, kill: !graceful));
        }
    }

    /// <summary>SIGTERM, then SIGKILL after <see cref="BalancerOptions.StopTimeout"/> (or SIGKILL at once).</summary>
    private async Task StopProcessAsync(Worker worker, bool kill)
    {
        List<BackendConnection> idle;
        lock (_lock)
        {
            idle = [.. worker.Idle];
            worker.Idle.Clear();
        }

        foreach (var connection in idle)
        {
            connection.Break(new TTransportException(TTransportErrorKind.NotOpen, $"worker {worker.Id} is stopping"));
        }

        if (worker.Process is not { } process)
        {
            return; // an external worker: closing its connections is all there is
        }

        Signal(worker, kill);
        if (kill)
        {
            return;
        }

        using var wait = new CancellationTokenSource(_options.StopTimeout);
        try
        {
            await process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            LogStopTimeout(_logger, worker.Id, worker.Pid, _options.StopTimeout.TotalSeconds);
            Signal(worker, kill: true);
        }
        catch (InvalidOperationException)
        {
            // disposed: it has exited
        }
    }

    private static void Signal(Worker worker, bool kill)
    {
        try
        {
            if (worker.Process is { HasExited: false })
            {
                _ = Posix.Kill(worker.Pid, kill ? Posix.SigKill : Posix.SigTerm);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    private async Task WatchMemoryAsync()
    {
        using var timer = new PeriodicTimer(_options.MemoryCheckInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                Worker[] ready;
                lock (_lock)
                {
                    ready = [.. _workers.Where(w => w.State == WorkerState.Ready && !w.External)];
                }

                foreach (var worker in ready)
                {
                    if (ResidentMb(worker.Pid) is { } mb && mb > _options.MaxWorkerMemoryMb)
                    {
                        Replace(worker, $"it holds {mb} MiB, over MaxWorkerMemoryMb {_options.MaxWorkerMemoryMb}", graceful: true);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    /// <summary>A process's resident memory in MiB (<c>VmRSS</c> of <c>/proc/PID/status</c>), or null when it is gone.</summary>
    internal static long? ResidentMb(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    var kb = long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture);
                    return kb / 1024;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            // gone, or not readable
        }

        return null;
    }

    // ---- workers that connect by themselves (back_address) -------------------------------------------------------

    private void AcceptExternal(Socket socket, string peer)
    {
        var n = Interlocked.Increment(ref _external);
        var worker = new Worker($"ext-{n}", -1, Instance(null, $"ext-{n}"), 1) { External = true, StartedAt = Stopwatch.GetTimestamp() };
        var connection = BackendConnection.FromSocket(socket, worker.Instance, _proxy.Options.Limits);
        _proxy.Track(connection);
        List<(Waiter, Worker)>? granted = null;
        lock (_lock)
        {
            if (_stopping.IsCancellationRequested)
            {
                connection.Break(new TTransportException(TTransportErrorKind.NotOpen, "the balancer is stopping"));
                return;
            }

            worker.Connections.Add(connection);
            worker.Idle.Push(connection);
            worker.State = WorkerState.Ready;
            _workers.Add(worker);
            HandOff(ref granted);
        }

        Grant(granted);

        LogExternal(_logger, worker.Id, peer);
        _firstReady.TrySetResult();
        Background(WatchExternalAsync(worker, connection));
    }

    private async Task WatchExternalAsync(Worker worker, BackendConnection connection)
    {
        var reason = await connection.Closed.ConfigureAwait(false);
        lock (_lock)
        {
            worker.State = WorkerState.Exited;
            _workers.Remove(worker);
            worker.Idle.Clear();
        }

        LogExternalGone(_logger, worker.Id, reason.Message);
        await _proxy.RetireAsync(connection).ConfigureAwait(false);
    }

    // ---- stop ----------------------------------------------------------------------------------------------------

    /// <summary>Fails queued calls, closes the back address, and stops every worker (SIGTERM, SIGKILL after the stop timeout).</summary>
    public async Task StopAsync()
    {
        Worker[] workers;
        List<Waiter> waiters;
        lock (_lock)
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }

            _stopping.Cancel();
            waiters = [.. _waiters];
            _waiters.Clear();
            workers = [.. _workers];
            foreach (var worker in workers)
            {
                worker.State = WorkerState.Stopping;
            }
        }

        foreach (var waiter in waiters)
        {
            waiter.Completion.TrySetException(new TTransportException(TTransportErrorKind.NotOpen, $"not sent: the balancer of {Service} is stopping"));
        }

        _backListener?.Dispose();
        foreach (var worker in workers.Where(w => w.External))
        {
            foreach (var connection in worker.Connections)
            {
                connection.Break(new TTransportException(TTransportErrorKind.NotOpen, "the balancer is stopping"));
            }
        }

        await Task.WhenAll(workers.Where(w => !w.External).Select(w => StopProcessAsync(w, kill: false))).ConfigureAwait(false);
        Task[] background;
        lock (_background)
        {
            background = [.. _background];
        }

        // supervisors end when their process exits; a worker that ignores even SIGKILL is not waited for forever
        await Task.WhenAny(Task.WhenAll(background), Task.Delay(_options.StopTimeout + TimeSpan.FromSeconds(5))).ConfigureAwait(false);
        if (_ownSocketDirectory)
        {
            try
            {
                Directory.Delete(_socketDirectory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // a worker left something behind: the temp directory is not worth failing the stop for
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // not ours to worry about: the worker's bind will say what is wrong
        }
    }

    private sealed class Worker(string id, int index, ServiceInstance instance, int slots)
    {
        public string Id { get; } = id;

        public int Index { get; } = index;

        public ServiceInstance Instance { get; } = instance;

        public Process? Process { get; set; }

        public int Pid { get; set; }

        public string? SocketPath { get; init; }

        public bool External { get; init; }

        public long StartedAt { get; set; }

        public WorkerState State { get; set; } = WorkerState.Starting;

        public int InFlight { get; set; }

        public long Calls { get; set; }

        /// <summary>It refused or dropped a connection: not picked until its exit (or replacement) settles it.</summary>
        public bool Lost { get; set; }

        /// <summary>Calls at once (each on its own connection): worker_pool_size, or 1 for an external worker's one connection.</summary>
        public int Slots { get; } = slots;

        public Stack<BackendConnection> Idle { get; } = new();

        public List<BackendConnection> Connections { get; } = [];
    }

    private sealed class Waiter(long deadline, string method)
    {
        public long Deadline { get; } = deadline;

        public string Method { get; } = method;

        /// <summary>The queue's limit ends the wait before the call's deadline.</summary>
        public bool QueueLimited { get; init; }

        // completed outside the pool's lock, so its continuation (sending the call) may run on the completing thread
        public TaskCompletionSource<Worker> Completion { get; } = new();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "worker {Id}: starting (pid {Pid}): {Command}")]
    private static partial void LogStarting(ILogger logger, string id, int pid, string command);

    [LoggerMessage(Level = LogLevel.Error, Message = "worker {Id}: could not start '{Command}': {Reason}")]
    private static partial void LogStartFailed(ILogger logger, string id, string command, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "worker {Id}: ready (pid {Pid}) after {Ms:F0} ms")]
    private static partial void LogReady(ILogger logger, string id, int pid, double ms);

    [LoggerMessage(Level = LogLevel.Warning, Message = "worker {Id}: not accepting on its socket within {Seconds} s; killing it")]
    private static partial void LogStartTimeout(ILogger logger, string id, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "worker {Id} (pid {Pid}) exited with code {Code} after {Seconds:F1} s; starting it again")]
    private static partial void LogCrashed(ILogger logger, string id, int pid, int code, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "worker {Id} (pid {Pid}) stopped (exit code {Code})")]
    private static partial void LogStopped(ILogger logger, string id, int pid, int code);

    [LoggerMessage(Level = LogLevel.Information, Message = "worker {Id} (pid {Pid}): replacing it because {Reason}")]
    private static partial void LogRecycling(ILogger logger, string id, int pid, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "worker {Id} (pid {Pid}): killing and replacing it because {Reason}")]
    private static partial void LogKilling(ILogger logger, string id, int pid, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "worker {Id} (pid {Pid}) did not exit within {Seconds} s of SIGTERM; sending SIGKILL")]
    private static partial void LogStopTimeout(ILogger logger, string id, int pid, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "call not sent to worker {Id} ({Reason}); trying another")]
    private static partial void LogNotSent(ILogger logger, string id, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "workers may connect to {Address}")]
    private static partial void LogBackListening(ILogger logger, RpcEndpoint address);

    [LoggerMessage(Level = LogLevel.Information, Message = "worker {Id} connected from {Peer}")]
    private static partial void LogExternal(ILogger logger, string id, string peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "worker {Id} disconnected: {Reason}")]
    private static partial void LogExternalGone(ILogger logger, string id, string reason);
}

/// <summary>Signals to processes (SIGTERM for a graceful stop; <see cref="Process.Kill()"/> only sends SIGKILL).</summary>
internal static class Posix
{
    public const int SigTerm = 15;
    public const int SigKill = 9;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern int Kill(int pid, int signal);
}
