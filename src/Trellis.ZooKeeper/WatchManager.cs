namespace Trellis.ZooKeeper;

/// <summary>
/// Who is watching what, and who an event goes to. One-shot watches (data, exist, child) are removed when
/// they fire; persistent and persistent-recursive ones stay. Paths here are client paths (chroot removed).
/// </summary>
internal sealed class WatchManager
{
    private readonly object _lock = new();
    private readonly Dictionary<string, HashSet<Watcher>> _data = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<Watcher>> _exist = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<Watcher>> _child = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<Watcher>> _persistent = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<Watcher>> _recursive = new(StringComparer.Ordinal);

    public void AddData(string path, Watcher w) => Add(_data, path, w);
    public void AddExist(string path, Watcher w) => Add(_exist, path, w);
    public void AddChild(string path, Watcher w) => Add(_child, path, w);

    public void AddPersistent(string path, Watcher w, AddWatchMode mode) =>
        Add(mode == AddWatchMode.PersistentRecursive ? _recursive : _persistent, path, w);

    public void RemovePersistent(string path, Watcher w)
    {
        lock (_lock)
        {
            Remove(_persistent, path, w);
            Remove(_recursive, path, w);
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return new[] { _data, _exist, _child, _persistent, _recursive }.Sum(d => d.Values.Sum(s => s.Count));
            }
        }
    }

    /// <summary>The watched paths of each kind, for SetWatches after a reconnect.</summary>
    public (List<string> Data, List<string> Exist, List<string> Child, List<string> Persistent, List<string> Recursive) Snapshot()
    {
        lock (_lock)
        {
            return ([.. _data.Keys], [.. _exist.Keys], [.. _child.Keys], [.. _persistent.Keys], [.. _recursive.Keys]);
        }
    }

    /// <summary>The watchers an event goes to; one-shot watches that fire are removed.</summary>
    public List<Watcher> Materialize(WatchedEvent e)
    {
        var result = new HashSet<Watcher>();
        lock (_lock)
        {
            switch (e.Type)
            {
                case EventType.NodeCreated:
                case EventType.NodeDataChanged:
                    Take(_data, e.Path, result);
                    Take(_exist, e.Path, result);
                    break;
                case EventType.NodeChildrenChanged:
                    Take(_child, e.Path, result);
                    break;
                case EventType.NodeDeleted:
                    Take(_data, e.Path, result);
                    Take(_exist, e.Path, result);
                    Take(_child, e.Path, result);
                    break;
            }

            if (_persistent.TryGetValue(e.Path, out var exact))
            {
                result.UnionWith(exact);
            }

            // recursive watches see every change of their node and its descendants, but not child lists
            if (e.Type != EventType.NodeChildrenChanged)
            {
                for (var p = e.Path; ; p = Parent(p))
                {
                    if (_recursive.TryGetValue(p, out var recursive))
                    {
                        result.UnionWith(recursive);
                    }

                    if (p == "/")
                    {
                        break;
                    }
                }
            }
        }

        return [.. result];
    }

    public void Clear()
    {
        lock (_lock)
        {
            _data.Clear();
            _exist.Clear();
            _child.Clear();
            _persistent.Clear();
            _recursive.Clear();
        }
    }

    private static string Parent(string path)
    {
        var slash = path.LastIndexOf('/');
        return slash <= 0 ? "/" : path[..slash];
    }

    private void Add(Dictionary<string, HashSet<Watcher>> map, string path, Watcher w)
    {
        lock (_lock)
        {
            if (!map.TryGetValue(path, out var set))
            {
                map[path] = set = [];
            }

            set.Add(w);
        }
    }

    private static void Remove(Dictionary<string, HashSet<Watcher>> map, string path, Watcher w)
    {
        if (map.TryGetValue(path, out var set) && set.Remove(w) && set.Count == 0)
        {
            map.Remove(path);
        }
    }

    private static void Take(Dictionary<string, HashSet<Watcher>> map, string path, HashSet<Watcher> into)
    {
        if (map.Remove(path, out var set))
        {
            into.UnionWith(set);
        }
    }
}
