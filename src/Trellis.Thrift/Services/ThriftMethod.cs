namespace Trellis.Thrift.Services;

/// <summary>
/// What a generated client, dispatcher or the runtime's retry policy needs to know about one service
/// method: names, whether it is oneway or idempotent, its argument and result structs, its annotations.
/// </summary>
public sealed class ThriftMethod
{
    private static readonly IReadOnlyDictionary<string, string> NoAnnotations = new Dictionary<string, string>();

    public ThriftMethod(string serviceName, string name, bool isOneway, bool isIdempotent, Type argumentsType, Type? resultType,
        IReadOnlyDictionary<string, string>? annotations = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(argumentsType);
        if (isOneway != (resultType is null))
        {
            throw new ArgumentException("a oneway method has no result type, and every other method has one", nameof(resultType));
        }

        ServiceName = serviceName;
        Name = name;
        IsOneway = isOneway;
        IsIdempotent = isIdempotent;
        ArgumentsType = argumentsType;
        ResultType = resultType;
        Annotations = annotations ?? NoAnnotations;
        MultiplexedName = Thrift.MultiplexedName.Combine(serviceName, name);
    }

    /// <summary>The service the method is called through (for an inherited method, the derived service).</summary>
    public string ServiceName { get; }

    /// <summary>The method name as in the IDL and on the wire.</summary>
    public string Name { get; }

    /// <summary><c>service:method</c>.</summary>
    public string MultiplexedName { get; }

    /// <summary>Sent as ONEWAY: no reply, the caller learns nothing after the send.</summary>
    public bool IsOneway { get; }

    /// <summary>Marked <c>(idempotent)</c> in the IDL: safe to retry even when the first attempt may have run.</summary>
    public bool IsIdempotent { get; }

    public Type ArgumentsType { get; }

    /// <summary>The <c>…Result</c> struct (success in field 0, declared exceptions after), or null for oneway.</summary>
    public Type? ResultType { get; }

    public IReadOnlyDictionary<string, string> Annotations { get; }

    public override string ToString() => MultiplexedName;
}
