using System.Globalization;
using Microsoft.Diagnostics.Runtime;

// Heap statistics of a live .NET process (attached, suspended while read) or a dump made by the runtime's createdump:
// the top types by total size and count, and, for a type, which types hold its instances (inbound references by type).
//   HeapStats <pid|dump-file> [--top N] [--referrers TYPE]... [--strings N]
// TYPE matches a type's full name exactly, or as a prefix when it ends with '*'.
if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine("usage: HeapStats <pid|dump-file> [--top N] [--referrers TYPE]... [--strings N]");
    return 2;
}

var top = 40;
var strings = 0;
var referrers = new List<string>();
for (var i = 1; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--top":
            top = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--referrers":
            referrers.Add(args[++i]);
            break;
        case "--strings":
            strings = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        default:
            Console.Error.WriteLine($"unknown option {args[i]}");
            return 2;
    }
}

using var target = int.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
    ? DataTarget.AttachToProcess(pid, suspend: true)
    : DataTarget.LoadDump(args[0]);
using var runtime = target.ClrVersions[0].CreateRuntime();
var heap = runtime.Heap;

var byType = new Dictionary<string, (long Count, long Bytes)>(StringComparer.Ordinal);
var stringText = new Dictionary<string, (long Count, long Bytes)>(StringComparer.Ordinal);
long objects = 0, total = 0;
foreach (var o in heap.EnumerateObjects())
{
    if (!o.IsValid || o.IsFree)
    {
        continue;
    }

    var name = o.Type?.Name ?? "<unknown>";
    var size = (long)o.Size;
    objects++;
    total += size;
    byType[name] = byType.TryGetValue(name, out var t) ? (t.Count + 1, t.Bytes + size) : (1, size);
    if (strings > 0 && o.Type?.IsString == true)
    {
        var text = o.AsString(80) ?? "";
        stringText[text] = stringText.TryGetValue(text, out var s) ? (s.Count + 1, s.Bytes + size) : (1, size);
    }
}

Console.WriteLine($"heap: {objects:N0} live and dead objects, {total:N0} bytes (segments as walked, no GC run)");
foreach (var segment in heap.Segments.GroupBy(s => s.Kind))
{
    Console.WriteLine($"  {segment.Key}: {segment.Count()} segment(s), committed {segment.Sum(s => (long)s.CommittedMemory.Length):N0} B, objects {segment.Sum(s => (long)s.ObjectRange.Length):N0} B");
}

Console.WriteLine();
Console.WriteLine($"{"bytes",14} {"count",10}  type (top {top} by bytes)");
foreach (var (name, (count, bytes)) in byType.OrderByDescending(kv => kv.Value.Bytes).Take(top))
{
    Console.WriteLine($"{bytes,14:N0} {count,10:N0}  {name}");
}

if (strings > 0)
{
    Console.WriteLine();
    Console.WriteLine($"{"bytes",14} {"count",10}  string (top {strings} by bytes)");
    foreach (var (text, (count, bytes)) in stringText.OrderByDescending(kv => kv.Value.Bytes).Take(strings))
    {
        Console.WriteLine($"{bytes,14:N0} {count,10:N0}  \"{text.ReplaceLineEndings("\\n")}\"");
    }
}

foreach (var wanted in referrers)
{
    bool Match(string? n) => n is not null && (wanted.EndsWith('*') ? n.StartsWith(wanted[..^1], StringComparison.Ordinal) : n == wanted);
    var holders = new Dictionary<string, (long Count, long Bytes)>(StringComparer.Ordinal);
    foreach (var o in heap.EnumerateObjects())
    {
        if (!o.IsValid || o.IsFree || o.Type is null)
        {
            continue;
        }

        foreach (var r in o.EnumerateReferences())
        {
            if (Match(r.Type?.Name))
            {
                var key = $"{o.Type.Name} -> {r.Type!.Name}";
                holders[key] = holders.TryGetValue(key, out var h) ? (h.Count + 1, h.Bytes + (long)r.Size) : (1, (long)r.Size);
            }
        }
    }

    Console.WriteLine();
    Console.WriteLine($"{"bytes held",14} {"refs",10}  referrer type -> {wanted}");
    foreach (var (key, (count, bytes)) in holders.OrderByDescending(kv => kv.Value.Bytes).Take(top))
    {
        Console.WriteLine($"{bytes,14:N0} {count,10:N0}  {key}");
    }
}

return 0;
