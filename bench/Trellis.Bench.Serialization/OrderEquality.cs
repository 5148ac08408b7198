using System.Globalization;
using ThriftAddress = Trellis.Bench.Serialization.ThriftModel.Address;
using ThriftItem = Trellis.Bench.Serialization.ThriftModel.Item;
using ThriftOrder = Trellis.Bench.Serialization.ThriftModel.Order;
using ProtoOrder = Trellis.Bench.Serialization.ProtoModel.Order;

namespace Trellis.Bench.Serialization;

/// <summary>
/// Field-by-field comparison of orders. Each method returns <c>null</c> when the two are equal,
/// otherwise a description of the first difference. Doubles are compared bit for bit.
/// </summary>
public static class OrderEquality
{
    /// <summary>Thrift against Thrift, isset flags included.</summary>
    public static string? Difference(ThriftOrder expected, ThriftOrder actual)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);

        if (expected.IsSetId != actual.IsSetId || expected.Id != actual.Id)
        {
            return Describe("id", expected.Id, actual.Id);
        }

        if (!string.Equals(expected.Customer, actual.Customer, StringComparison.Ordinal))
        {
            return Describe("customer", expected.Customer, actual.Customer);
        }

        var address = Difference(expected.Address, actual.Address);
        if (address is not null)
        {
            return address;
        }

        if ((expected.Items is null) != (actual.Items is null))
        {
            return Describe("items", expected.Items?.Count, actual.Items?.Count);
        }

        if (expected.Items is not null && actual.Items is not null)
        {
            if (expected.Items.Count != actual.Items.Count)
            {
                return Describe("items.count", expected.Items.Count, actual.Items.Count);
            }

            for (var i = 0; i < expected.Items.Count; i++)
            {
                var item = Difference(expected.Items[i], actual.Items[i], i);
                if (item is not null)
                {
                    return item;
                }
            }
        }

        var attributes = Difference(expected.Attributes, actual.Attributes);
        if (attributes is not null)
        {
            return attributes;
        }

        if (expected.IsSetStatus != actual.IsSetStatus || expected.Status != actual.Status)
        {
            return Describe("status", expected.Status, actual.Status);
        }

        if ((expected.Token is null) != (actual.Token is null) ||
            (expected.Token is not null && !expected.Token.AsSpan().SequenceEqual(actual.Token)))
        {
            return Describe("token", Hex(expected.Token), Hex(actual.Token));
        }

        return null;
    }

    /// <summary>Thrift against protobuf: the same values, every field present on the Thrift side.</summary>
    public static string? Difference(ThriftOrder thrift, ProtoOrder proto)
    {
        ArgumentNullException.ThrowIfNull(thrift);
        ArgumentNullException.ThrowIfNull(proto);

        if (!thrift.IsSetId || thrift.Id != proto.Id)
        {
            return Describe("id", thrift.Id, proto.Id);
        }

        if (!string.Equals(thrift.Customer, proto.Customer, StringComparison.Ordinal))
        {
            return Describe("customer", thrift.Customer, proto.Customer);
        }

        if (thrift.Address is null || proto.Address is null)
        {
            return Describe("address", thrift.Address is null ? "null" : "set", proto.Address is null ? "null" : "set");
        }

        if (!string.Equals(thrift.Address.Street, proto.Address.Street, StringComparison.Ordinal) ||
            !string.Equals(thrift.Address.City, proto.Address.City, StringComparison.Ordinal) ||
            !thrift.Address.IsSetZip || thrift.Address.Zip != proto.Address.Zip)
        {
            return Describe("address",
                $"{thrift.Address.Street}|{thrift.Address.City}|{thrift.Address.Zip}",
                $"{proto.Address.Street}|{proto.Address.City}|{proto.Address.Zip}");
        }

        if (thrift.Items is null || thrift.Items.Count != proto.Items.Count)
        {
            return Describe("items.count", thrift.Items?.Count, proto.Items.Count);
        }

        for (var i = 0; i < proto.Items.Count; i++)
        {
            var (t, p) = (thrift.Items[i], proto.Items[i]);
            if (!t.IsSetId || t.Id != p.Id ||
                !string.Equals(t.Name, p.Name, StringComparison.Ordinal) ||
                !t.IsSetPrice || BitConverter.DoubleToInt64Bits(t.Price) != BitConverter.DoubleToInt64Bits(p.Price) ||
                !t.IsSetQuantity || t.Quantity != p.Quantity ||
                !t.IsSetActive || t.Active != p.Active)
            {
                return Describe(Field("items", i), Format(t), $"{p.Id}|{p.Name}|{p.Price:R}|{p.Quantity}|{p.Active}");
            }
        }

        if (thrift.Attributes is null || thrift.Attributes.Count != proto.Attributes.Count)
        {
            return Describe("attributes.count", thrift.Attributes?.Count, proto.Attributes.Count);
        }

        foreach (var entry in proto.Attributes)
        {
            if (!thrift.Attributes.TryGetValue(entry.Key, out var value) || !string.Equals(value, entry.Value, StringComparison.Ordinal))
            {
                return Describe(Field("attributes", entry.Key), value, entry.Value);
            }
        }

        if (!thrift.IsSetStatus || thrift.Status != proto.Status)
        {
            return Describe("status", thrift.Status, proto.Status);
        }

        if (thrift.Token is null || !proto.Token.Span.SequenceEqual(thrift.Token))
        {
            return Describe("token", Hex(thrift.Token), Hex(proto.Token.ToByteArray()));
        }

        return null;
    }

    private static string? Difference(ThriftAddress? expected, ThriftAddress? actual)
    {
        if (expected is null || actual is null)
        {
            return expected is null && actual is null
                ? null
                : Describe("address", expected is null ? "null" : "set", actual is null ? "null" : "set");
        }

        if (!string.Equals(expected.Street, actual.Street, StringComparison.Ordinal))
        {
            return Describe("address.street", expected.Street, actual.Street);
        }

        if (!string.Equals(expected.City, actual.City, StringComparison.Ordinal))
        {
            return Describe("address.city", expected.City, actual.City);
        }

        if (expected.IsSetZip != actual.IsSetZip || expected.Zip != actual.Zip)
        {
            return Describe("address.zip", expected.Zip, actual.Zip);
        }

        return null;
    }

    private static string? Difference(ThriftItem expected, ThriftItem actual, int index)
    {
        if (expected.IsSetId != actual.IsSetId || expected.Id != actual.Id ||
            !string.Equals(expected.Name, actual.Name, StringComparison.Ordinal) ||
            expected.IsSetPrice != actual.IsSetPrice ||
            BitConverter.DoubleToInt64Bits(expected.Price) != BitConverter.DoubleToInt64Bits(actual.Price) ||
            expected.IsSetQuantity != actual.IsSetQuantity || expected.Quantity != actual.Quantity ||
            expected.IsSetActive != actual.IsSetActive || expected.Active != actual.Active)
        {
            return Describe(Field("items", index), Format(expected), Format(actual));
        }

        return null;
    }

    private static string? Difference(Dictionary<string, string>? expected, Dictionary<string, string>? actual)
    {
        if (expected is null || actual is null)
        {
            return expected is null && actual is null ? null : Describe("attributes", expected?.Count, actual?.Count);
        }

        if (expected.Count != actual.Count)
        {
            return Describe("attributes.count", expected.Count, actual.Count);
        }

        foreach (var entry in expected)
        {
            if (!actual.TryGetValue(entry.Key, out var value) || !string.Equals(value, entry.Value, StringComparison.Ordinal))
            {
                return Describe(Field("attributes", entry.Key), entry.Value, value);
            }
        }

        return null;
    }

    private static string Field(string name, object index) => string.Create(CultureInfo.InvariantCulture, $"{name}[{index}]");

    private static string Format(ThriftItem item) => string.Create(CultureInfo.InvariantCulture,
        $"{Opt(item.IsSetId, item.Id)}|{item.Name}|{Opt(item.IsSetPrice, item.Price)}|{Opt(item.IsSetQuantity, item.Quantity)}|{Opt(item.IsSetActive, item.Active)}");

    private static object Opt(bool isSet, object value) => isSet ? value : "unset";

    private static string Hex(byte[]? bytes) => bytes is null ? "null" : Convert.ToHexString(bytes);

    private static string Describe(string field, object? expected, object? actual) =>
        string.Create(CultureInfo.InvariantCulture, $"{field}: expected <{expected ?? "null"}>, got <{actual ?? "null"}>");
}
