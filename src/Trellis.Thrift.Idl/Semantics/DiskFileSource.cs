namespace Trellis.Thrift.Idl.Semantics;

/// <summary>Reads IDL files from the file system.</summary>
public sealed class DiskFileSource : IThriftFileSource
{
    public bool TryRead(string path, out string text)
    {
        if (File.Exists(path))
        {
            text = File.ReadAllText(path);
            return true;
        }

        text = "";
        return false;
    }
}
