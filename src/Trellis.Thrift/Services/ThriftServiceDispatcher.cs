namespace Trellis.Thrift.Services;

/// <summary>
/// The server side of one method: makes the empty argument struct for the transport to read into,
/// then runs the handler and returns the result struct to send (null for oneway).
/// </summary>
/// <remarks>
/// Exceptions the IDL declares are folded into the result struct; any other exception propagates, and
/// the server turns it into a <see cref="TApplicationException"/> (<see cref="TApplicationExceptionType.InternalError"/>).
/// </remarks>
public abstract class ThriftMethodInvoker(ThriftMethod method)
{
    public ThriftMethod Method { get; } = method ?? throw new ArgumentNullException(nameof(method));

    public abstract IThriftStruct CreateArguments();

    public abstract Task<IThriftWritable?> InvokeAsync(IThriftStruct arguments, CancellationToken cancellationToken);
}

/// <summary>An invoker over a delegate: what generated dispatchers build, one per method.</summary>
public sealed class ThriftMethodInvoker<TArguments>(ThriftMethod method, Func<TArguments, CancellationToken, Task<IThriftWritable?>> invoke)
    : ThriftMethodInvoker(method)
    where TArguments : IThriftStruct, new()
{
    public override IThriftStruct CreateArguments() => new TArguments();

    public override Task<IThriftWritable?> InvokeAsync(IThriftStruct arguments, CancellationToken cancellationToken) =>
        invoke((TArguments)arguments, cancellationToken);
}

/// <summary>
/// The server side of one service: its methods by wire name. Generated per service
/// (<c>Calculator.Dispatcher</c>) around a handler that implements the service interface.
/// </summary>
public abstract class ThriftServiceDispatcher
{
    private readonly Dictionary<string, ThriftMethodInvoker> _invokers;

    protected ThriftServiceDispatcher(string serviceName, IEnumerable<ThriftMethodInvoker> invokers)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentNullException.ThrowIfNull(invokers);
        ServiceName = serviceName;
        _invokers = invokers.ToDictionary(i => i.Method.Name, StringComparer.Ordinal);
        Methods = _invokers.Values.Select(i => i.Method).ToArray();
    }

    public string ServiceName { get; }

    public IReadOnlyList<ThriftMethod> Methods { get; }

    /// <summary>Finds a method by its bare name (the service prefix of a multiplexed name already removed).</summary>
    public bool TryGetInvoker(string methodName, out ThriftMethodInvoker invoker) =>
        _invokers.TryGetValue(methodName, out invoker!);
}
