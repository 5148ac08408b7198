using System.Globalization;
using Google.Protobuf;
using ThriftAddress = Trellis.Bench.Serialization.ThriftModel.Address;
using ThriftItem = Trellis.Bench.Serialization.ThriftModel.Item;
using ThriftOrder = Trellis.Bench.Serialization.ThriftModel.Order;
using ProtoAddress = Trellis.Bench.Serialization.ProtoModel.Address;
using ProtoItem = Trellis.Bench.Serialization.ProtoModel.Item;
using ProtoOrder = Trellis.Bench.Serialization.ProtoModel.Order;

namespace Trellis.Bench.Serialization;

/// <summary>
/// The benchmark's order, built once from one set of values into both models, so the Thrift and
/// the protobuf side serialize exactly the same data. Every value is non-zero / non-empty, so that
/// proto3 (which leaves default values out) writes every field, as Thrift does.
/// </summary>
public static class SampleData
{
    public const int ItemCount = 100;

    public const long OrderId = 7_340_032_871L;

    public const int Status = 3;

    /// <summary>The one string with non-ASCII text (2- and 3-byte UTF-8 sequences).</summary>
    public const string Customer = "Zoë Ångström-Müller — Köln";

    public const string Street = "Hohenzollernring 112";

    public const string City = "Cologne";

    public const int Zip = 50672;

    private static readonly (string Key, string Value)[] AttributeValues =
    [
        ("channel", "web"),
        ("currency", "EUR"),
        ("locale", "de-DE"),
        ("warehouse", "FRA-2"),
        ("priority", "express"),
        ("coupon", "SPRING-24"),
        ("gift-wrap", "yes"),
        ("source", "mobile-app/4.12.0"),
        ("carrier", "DHL Express"),
        ("sales-rep", "rep-00917"),
    ];

    private static ReadOnlySpan<byte> TokenBytes =>
    [
        0x5a, 0x1f, 0xc3, 0x07, 0x9e, 0x42, 0xd8, 0x11, 0x6b, 0xa4, 0x3c, 0xf0, 0x27, 0x88, 0xe5, 0x19,
    ];

    public static long ItemId(int i) => 3_000_000_000L + (i * 7_919L);

    public static string ItemName(int i) => string.Create(CultureInfo.InvariantCulture, $"item-{i:D3}");

    /// <summary>19.99, 21.24, 22.49, ... (rounded to cents, the same double on both sides).</summary>
    public static double ItemPrice(int i) => Math.Round(19.99 + (i * 1.25), 2);

    public static int ItemQuantity(int i) => 1 + (i % 12);

    public static ThriftOrder CreateThrift()
    {
        var items = new List<ThriftItem>(ItemCount);
        for (var i = 0; i < ItemCount; i++)
        {
            items.Add(new ThriftItem
            {
                Id = ItemId(i),
                Name = ItemName(i),
                Price = ItemPrice(i),
                Quantity = ItemQuantity(i),
                Active = true,
            });
        }

        var attributes = new Dictionary<string, string>(AttributeValues.Length);
        foreach (var (key, value) in AttributeValues)
        {
            attributes.Add(key, value);
        }

        return new ThriftOrder
        {
            Id = OrderId,
            Customer = Customer,
            Address = new ThriftAddress { Street = Street, City = City, Zip = Zip },
            Items = items,
            Attributes = attributes,
            Status = Status,
            Token = TokenBytes.ToArray(),
        };
    }

    public static ProtoOrder CreateProto()
    {
        var order = new ProtoOrder
        {
            Id = OrderId,
            Customer = Customer,
            Address = new ProtoAddress { Street = Street, City = City, Zip = Zip },
            Status = Status,
            Token = ByteString.CopyFrom(TokenBytes),
        };

        for (var i = 0; i < ItemCount; i++)
        {
            order.Items.Add(new ProtoItem
            {
                Id = ItemId(i),
                Name = ItemName(i),
                Price = ItemPrice(i),
                Quantity = ItemQuantity(i),
                Active = true,
            });
        }

        foreach (var (key, value) in AttributeValues)
        {
            order.Attributes.Add(key, value);
        }

        return order;
    }
}
