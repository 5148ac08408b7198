using System.Collections;

namespace Trellis.Thrift;

/// <summary>
/// Deep equality and hashing for generated structs: binaries by content, lists in order, sets and maps
/// regardless of order, nested to any depth. Type tests only, no reflection (Native AOT friendly).
/// </summary>
public static class ThriftEquality
{
    /// <summary>Compares <c>byte[]</c> by content: the comparer of generated sets and maps keyed by binary.</summary>
    public static IEqualityComparer<byte[]> BinaryComparer { get; } = new ContentComparer<byte[]>();

    /// <summary>A by-content comparer for container keys (sets of lists, maps keyed by sets…).</summary>
    public static IEqualityComparer<T> DeepComparer<T>() => ContentComparer<T>.Instance;

    public static new bool Equals(object? a, object? b)
    {
        if (ReferenceEquals(a, b))
        {
            return true;
        }

        if (a is null || b is null)
        {
            return false;
        }

        switch (a)
        {
            case byte[] x:
                return b is byte[] yb && x.AsSpan().SequenceEqual(yb);
            case double x:
                return b is double yd && x.Equals(yd);
            case IDictionary x:
                if (b is not IDictionary ym || x.Count != ym.Count)
                {
                    return false;
                }

                foreach (DictionaryEntry entry in x)
                {
                    if (!TryFind(ym, entry.Key, out var other) || !Equals(entry.Value, other))
                    {
                        return false;
                    }
                }

                return true;
            case IList x:
                if (b is not IList yl || x.Count != yl.Count)
                {
                    return false;
                }

                for (var i = 0; i < x.Count; i++)
                {
                    if (!Equals(x[i], yl[i]))
                    {
                        return false;
                    }
                }

                return true;
            case IEnumerable x when a is not string:
                return b is IEnumerable ye && b is not string && SameElements(x, ye);
            default:
                return a.Equals(b);
        }
    }

    public static int HashOf(object? value)
    {
        switch (value)
        {
            case null:
                return 0;
            case byte[] bytes:
            {
                var hash = new HashCode();
                hash.AddBytes(bytes);
                return hash.ToHashCode();
            }

            case IDictionary map:
            {
                // order-independent: a sum of entry hashes
                var sum = map.Count;
                foreach (DictionaryEntry entry in map)
                {
                    sum += HashCode.Combine(HashOf(entry.Key), HashOf(entry.Value));
                }

                return sum;
            }

            case IList list:
            {
                var hash = new HashCode();
                foreach (var item in list)
                {
                    hash.Add(HashOf(item));
                }

                return hash.ToHashCode();
            }

            case IEnumerable set when value is not string:
            {
                var sum = 0;
                foreach (var item in set)
                {
                    sum += HashOf(item);
                }

                return sum;
            }

            default:
                return value.GetHashCode();
        }
    }

    private static bool TryFind(IDictionary map, object? key, out object? value)
    {
        if (key is not null && map.Contains(key))
        {
            value = map[key];
            return true;
        }

        // keys compared by reference in the other map (binaries, containers): fall back to a scan
        foreach (DictionaryEntry entry in map)
        {
            if (Equals(entry.Key, key))
            {
                value = entry.Value;
                return true;
            }
        }

        value = null;
        return false;
    }

    private static bool SameElements(IEnumerable a, IEnumerable b)
    {
        var left = a.Cast<object?>().ToList();
        var right = b.Cast<object?>().ToList();
        if (left.Count != right.Count)
        {
            return false;
        }

        var used = new bool[right.Count];
        foreach (var x in left)
        {
            var found = false;
            for (var j = 0; j < right.Count && !found; j++)
            {
                if (!used[j] && Equals(x, right[j]))
                {
                    used[j] = found = true;
                }
            }

            if (!found)
            {
                return false;
            }
        }

        return true;
    }

    private sealed class ContentComparer<T> : IEqualityComparer<T>
    {
        public static readonly ContentComparer<T> Instance = new();

        public bool Equals(T? x, T? y) => ThriftEquality.Equals(x, y);

        public int GetHashCode(T obj) => HashOf(obj);
    }
}
