using Trellis.Rpc;
using Trellis.Rpc.Registry;

namespace Trellis.Proxy.Balancer;

/// <summary>
/// How <c>trellis balancer</c> runs a pool of single-threaded workers behind one service: the workers it starts
/// (<see cref="Command"/>, <see cref="Workers"/>) and/or the ones that connect to <see cref="BackAddress"/>, how
/// many calls each takes at once, the queue in front of them, and when a worker is recycled or given up on.
/// </summary>
public sealed class BalancerOptions
{
    /// <summary>The service the workers implement; callers name it as <c>service:method</c> (a bare method name means it too).</summary>
    public string Service { get; set; } = "";

    /// <summary>
    /// The command that starts one worker, run through <c>/bin/sh -c "exec …"</c>, with <c>{socket}</c> (the Unix
    /// socket the worker must serve on), <c>{index}</c> (0…Workers-1) and <c>{service}</c> replaced. Null: no workers
    /// are started, only those that connect to <see cref="BackAddress"/> serve.
    /// </summary>
    public string? Command { get; set; }

    /// <summary>Workers to keep running (default: the number of cores).</summary>
    public int Workers { get; set; } = Environment.ProcessorCount;

    /// <summary>rpc_proxy's <c>worker_pool_size</c>: calls in flight at most per worker (each on its own connection). A single-threaded server takes 1.</summary>
    public int WorkerPoolSize { get; set; } = 1;

    /// <summary>rpc_proxy's <c>back_address</c>: where workers that start themselves connect (a Unix socket path or host:port), or null.</summary>
    public RpcEndpoint? BackAddress { get; set; }

    /// <summary>Where the started workers' Unix sockets go (default: a private directory under the temp directory).</summary>
    public string? SocketDirectory { get; set; }

    /// <summary>How the workers speak: <c>framed</c> (default) or <c>unframed</c>; <c>binary</c> (default) or <c>compact</c>.</summary>
    public string WorkerFraming { get; set; } = "framed";

    public string WorkerProtocol { get; set; } = "binary";

    /// <summary>The workers serve through a multiplexed processor (they take <c>service:method</c>); default: bare method names.</summary>
    public bool WorkerMultiplexed { get; set; }

    /// <summary>Calls that wait for a free worker at most; beyond it a call fails at once with an overload error.</summary>
    public int QueueSize { get; set; } = 1024;

    /// <summary>How long a call waits for a free worker at most (its own deadline may be shorter).</summary>
    public TimeSpan QueueTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A worker is replaced after this many calls (0: never).</summary>
    public long MaxRequestsPerWorker { get; set; }

    /// <summary>A worker is replaced once its resident memory passes this many MiB (0: never).</summary>
    public int MaxWorkerMemoryMb { get; set; }

    /// <summary>How long a starting worker gets to accept on its socket before it is killed and started again.</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>After SIGTERM, how long a worker gets to exit before SIGKILL.</summary>
    public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The first wait before restarting a crashed worker; it doubles with each crash in a row, up to <see cref="MaxRestartDelay"/>.</summary>
    public TimeSpan RestartDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan MaxRestartDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the workers' memory is read.</summary>
    public TimeSpan MemoryCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>What is wrong with these options, or null.</summary>
    public string? Validate()
    {
        if (!RegistryPaths.IsName(Service))
        {
            return Service.Length == 0 ? "no service: name the service the workers implement (config.ini 'service')" : $"service '{Service}' is not a valid name";
        }

        if (Command is null && BackAddress is null)
        {
            return "no workers: give a worker command (Trellis:Balancer:Command) and/or a back_address workers connect to";
        }

        if (Command is not null && !Command.Contains("{socket}", StringComparison.Ordinal))
        {
            return $"the worker command must contain {{socket}}, the Unix socket the worker serves on: '{Command}'";
        }

        if (Command is not null && Workers is < 1 or > 1024)
        {
            return $"Workers must be from 1 to 1024, not {Workers}";
        }

        if (WorkerPoolSize is < 1 or > 1024)
        {
            return $"worker_pool_size must be from 1 to 1024, not {WorkerPoolSize}";
        }

        if (WorkerFraming is not ("framed" or "unframed") || WorkerProtocol is not ("binary" or "compact"))
        {
            return $"workers speak framed or unframed, binary or compact; not '{WorkerFraming}' / '{WorkerProtocol}'";
        }

        if (QueueSize < 0 || QueueTimeout < TimeSpan.Zero || MaxRequestsPerWorker < 0 || MaxWorkerMemoryMb < 0)
        {
            return "QueueSize, QueueTimeout, MaxRequestsPerWorker and MaxWorkerMemoryMb must not be negative";
        }

        if (StartTimeout <= TimeSpan.Zero || StopTimeout < TimeSpan.Zero || RestartDelay <= TimeSpan.Zero || MaxRestartDelay < RestartDelay)
        {
            return "StartTimeout and RestartDelay must be positive, StopTimeout not negative, MaxRestartDelay at least RestartDelay";
        }

        return null;
    }
}
