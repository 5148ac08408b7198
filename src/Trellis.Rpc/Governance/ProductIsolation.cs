namespace Trellis.Rpc.Governance;

/// <summary>
/// Products are isolated: a caller of a product whose name does not start with <c>online</c> never reaches a service
/// of an <c>online*</c> product. Callers say their product in the THeader key <see cref="RpcHeaders.CallerProduct"/>
/// (Trellis clients and proxies add it); servers and proxies of online products refuse the others.
/// </summary>
public static class ProductIsolation
{
    public static bool IsOnline(string product) => product.StartsWith("online", StringComparison.Ordinal);

    /// <summary>Why a call of <paramref name="caller"/>'s product to <paramref name="target"/>'s is refused, or null when it is allowed (or the caller's product is unknown).</summary>
    public static string? Refusal(string? caller, string target) =>
        caller is not null && IsOnline(target) && !IsOnline(caller)
            ? $"product isolation: a caller of product '{caller}' may not call product '{target}' (only online* products call online* ones)"
            : null;
}
