using System.Text;

namespace Trellis.Thrift;

/// <summary>
/// Message names of the form <c>service:method</c> (Apache's TMultiplexedProtocol), and the bound on
/// how much of a peer's name is echoed back in an error.
/// </summary>
public static class MultiplexedName
{
    public const char Separator = ':';

    /// <summary>The most bytes of a peer-supplied name that an error message repeats.</summary>
    public const int MaxEchoBytes = 256;

    public static string Combine(string service, string method)
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        ArgumentException.ThrowIfNullOrEmpty(method);
        if (service.Contains(Separator, StringComparison.Ordinal) || method.Contains(Separator, StringComparison.Ordinal))
        {
            throw new ArgumentException($"service and method names cannot contain '{Separator}'");
        }

        return service + Separator + method;
    }

    /// <summary>
    /// Splits <paramref name="name"/>. A name without a separator is a plain method name
    /// (<paramref name="service"/> is null). An empty part or more than one separator is an error,
    /// described in <paramref name="error"/> with the name truncated by <see cref="ForEcho"/>.
    /// </summary>
    public static bool TryParse(string name, out string? service, out string method, out string? error)
    {
        ArgumentNullException.ThrowIfNull(name);
        service = null;
        method = name;
        error = null;
        var first = name.IndexOf(Separator, StringComparison.Ordinal);
        if (first < 0)
        {
            if (name.Length == 0)
            {
                error = "empty method name";
                return false;
            }

            return true;
        }

        if (first == 0 || first == name.Length - 1 || name.IndexOf(Separator, first + 1) >= 0)
        {
            error = $"malformed multiplexed name '{ForEcho(name)}': expected service{Separator}method";
            method = "";
            return false;
        }

        service = name[..first];
        method = name[(first + 1)..];
        return true;
    }

    /// <summary>A peer's name cut to at most <see cref="MaxEchoBytes"/> UTF-8 bytes (never inside a character), for error messages.</summary>
    public static string ForEcho(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Encoding.UTF8.GetByteCount(name) <= MaxEchoBytes)
        {
            return name;
        }

        var bytes = 0;
        var end = 0;
        foreach (var rune in name.EnumerateRunes())
        {
            if (bytes + rune.Utf8SequenceLength > MaxEchoBytes - 3)
            {
                break;
            }

            bytes += rune.Utf8SequenceLength;
            end += rune.Utf16SequenceLength;
        }

        return name[..end] + "...";
    }
}
