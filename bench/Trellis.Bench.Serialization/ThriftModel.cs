// The structs of order.thrift, written by hand in the shape a Trellis code generator emits:
// sealed classes, nullable references for optional-by-default fields, an isset bitfield for the
// value-type fields, Write that writes only set fields, Read that checks id and wire type and skips
// everything it does not know. No reflection, no LINQ, and Write allocates nothing.

using Trellis.Thrift;

namespace Trellis.Bench.Serialization.ThriftModel;

/// <summary><c>struct Address { 1: string street, 2: string city, 3: i32 zip }</c></summary>
public sealed class Address : IThriftStruct
{
    private const byte IssetZip = 1 << 0;

    private byte _isset;
    private int _zip;

    public string? Street { get; set; }

    public string? City { get; set; }

    public int Zip
    {
        get => _zip;
        set
        {
            _zip = value;
            _isset |= IssetZip;
        }
    }

    public bool IsSetStreet => Street is not null;

    public bool IsSetCity => City is not null;

    public bool IsSetZip => (_isset & IssetZip) != 0;

    public void UnsetZip()
    {
        _zip = 0;
        _isset &= unchecked((byte)~IssetZip);
    }

    public void Write<TWriter>(ref TWriter writer)
        where TWriter : IThriftWriter, allows ref struct
    {
        var scope = writer.WriteStructBegin();
        var street = Street;
        if (street is not null)
        {
            writer.WriteFieldBegin(TType.String, 1);
            writer.WriteString(street);
            writer.WriteFieldEnd();
        }

        var city = City;
        if (city is not null)
        {
            writer.WriteFieldBegin(TType.String, 2);
            writer.WriteString(city);
            writer.WriteFieldEnd();
        }

        if ((_isset & IssetZip) != 0)
        {
            writer.WriteFieldBegin(TType.I32, 3);
            writer.WriteI32(_zip);
            writer.WriteFieldEnd();
        }

        writer.WriteFieldStop();
        writer.WriteStructEnd(scope);
    }

    public void Read<TReader>(ref TReader reader)
        where TReader : IThriftReader, allows ref struct
    {
        var scope = reader.ReadStructBegin();
        while (true)
        {
            var field = reader.ReadFieldBegin();
            if (field.IsStop)
            {
                break;
            }

            switch (field.Id)
            {
                case 1:
                    if (field.Type == TType.String)
                    {
                        Street = reader.ReadString();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                case 2:
                    if (field.Type == TType.String)
                    {
                        City = reader.ReadString();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                case 3:
                    if (field.Type == TType.I32)
                    {
                        Zip = reader.ReadI32();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                default:
                    reader.Skip(field.Type);
                    break;
            }

            reader.ReadFieldEnd();
        }

        reader.ReadStructEnd(scope);
    }
}

/// <summary><c>struct Item { 1: i64 id, 2: string name, 3: double price, 4: i32 quantity, 5: bool active }</c></summary>
public sealed class Item : IThriftStruct
{
    private const byte IssetId = 1 << 0;
    private const byte IssetPrice = 1 << 1;
    private const byte IssetQuantity = 1 << 2;
    private const byte IssetActive = 1 << 3;

    private byte _isset;
    private long _id;
    private double _price;
    private int _quantity;
    private bool _active;

    public long Id
    {
        get => _id;
        set
        {
            _id = value;
            _isset |= IssetId;
        }
    }

    public string? Name { get; set; }

    public double Price
    {
        get => _price;
        set
        {
            _price = value;
            _isset |= IssetPrice;
        }
    }

    public int Quantity
    {
        get => _quantity;
        set
        {
            _quantity = value;
            _isset |= IssetQuantity;
        }
    }

    public bool Active
    {
        get => _active;
        set
        {
            _active = value;
            _isset |= IssetActive;
        }
    }

    public bool IsSetId => (_isset & IssetId) != 0;

    public bool IsSetName => Name is not null;

    public bool IsSetPrice => (_isset & IssetPrice) != 0;

    public bool IsSetQuantity => (_isset & IssetQuantity) != 0;

    public bool IsSetActive => (_isset & IssetActive) != 0;

    public void UnsetId()
    {
        _id = 0;
        _isset &= unchecked((byte)~IssetId);
    }

    public void UnsetPrice()
    {
        _price = 0;
        _isset &= unchecked((byte)~IssetPrice);
    }

    public void UnsetQuantity()
    {
        _quantity = 0;
        _isset &= unchecked((byte)~IssetQuantity);
    }

    public void UnsetActive()
    {
        _active = false;
        _isset &= unchecked((byte)~IssetActive);
    }

    public void Write<TWriter>(ref TWriter writer)
        where TWriter : IThriftWriter, allows ref struct
    {
        var scope = writer.WriteStructBegin();
        if ((_isset & IssetId) != 0)
        {
            writer.WriteFieldBegin(TType.I64, 1);
            writer.WriteI64(_id);
            writer.WriteFieldEnd();
        }

        var name = Name;
        if (name is not null)
        {
            writer.WriteFieldBegin(TType.String, 2);
            writer.WriteString(name);
            writer.WriteFieldEnd();
        }

        if ((_isset & IssetPrice) != 0)
        {
            writer.WriteFieldBegin(TType.Double, 3);
            writer.WriteDouble(_price);
            writer.WriteFieldEnd();
        }

        if ((_isset & IssetQuantity) != 0)
        {
            writer.WriteFieldBegin(TType.I32, 4);
            writer.WriteI32(_quantity);
            writer.WriteFieldEnd();
        }

        if ((_isset & IssetActive) != 0)
        {
            writer.WriteFieldBegin(TType.Bool, 5);
            writer.WriteBool(_active);
            writer.WriteFieldEnd();
        }

        writer.WriteFieldStop();
        writer.WriteStructEnd(scope);
    }

    public void Read<TReader>(ref TReader reader)
        where TReader : IThriftReader, allows ref struct
    {
        var scope = reader.ReadStructBegin();
        while (true)
        {
            var field = reader.ReadFieldBegin();
            if (field.IsStop)
            {
                break;
            }

            switch (field.Id)
            {
                case 1:
                    if (field.Type == TType.I64)
                    {
                        Id = reader.ReadI64();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                case 2:
                    if (field.Type == TType.String)
                    {
                        Name = reader.ReadString();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                case 3:
                    if (field.Type == TType.Double)
                    {
                        Price = reader.ReadDouble();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                case 4:
                    if (field.Type == TType.I32)
                    {
                        Quantity = reader.ReadI32();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                case 5:
                    if (field.Type == TType.Bool)
                    {
                        Active = reader.ReadBool();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                default:
                    reader.Skip(field.Type);
                    break;
            }

            reader.ReadFieldEnd();
        }

        reader.ReadStructEnd(scope);
    }
}

/// <summary>
/// <c>struct Order { 1: i64 id, 2: string customer, 3: Address address, 4: list&lt;Item&gt; items,
/// 5: map&lt;string, string&gt; attributes, 6: i32 status, 7: binary token }</c>
/// </summary>
public sealed class Order : IThriftStruct
{
    private const byte IssetId = 1 << 0;
    private const byte IssetStatus = 1 << 1;

    private byte _isset;
    private long _id;
    private int _status;

    public long Id
    {
        get => _id;
        set
        {
            _id = value;
            _isset |= IssetId;
        }
    }

    public string? Customer { get; set; }

    public Address? Address { get; set; }

    public List<Item>? Items { get; set; }

    public Dictionary<string, string>? Attributes { get; set; }

    public int Status
    {
        get => _status;
        set
        {
            _status = value;
            _isset |= IssetStatus;
        }
    }

    public byte[]? Token { get; set; }

    public bool IsSetId => (_isset & IssetId) != 0;

    public bool IsSetCustomer => Customer is not null;

    public bool IsSetAddress => Address is not null;

    public bool IsSetItems => Items is not null;

    public bool IsSetAttributes => Attributes is not null;

    public bool IsSetStatus => (_isset & IssetStatus) != 0;

    public bool IsSetToken => Token is not null;

    public void UnsetId()
    {
        _id = 0;
        _isset &= unchecked((byte)~IssetId);
    }

    public void UnsetStatus()
    {
        _status = 0;
        _isset &= unchecked((byte)~IssetStatus);
    }

    public void Write<TWriter>(ref TWriter writer)
        where TWriter : IThriftWriter, allows ref struct
    {
        var scope = writer.WriteStructBegin();
        if ((_isset & IssetId) != 0)
        {
            writer.WriteFieldBegin(TType.I64, 1);
            writer.WriteI64(_id);
            writer.WriteFieldEnd();
        }

        var customer = Customer;
        if (customer is not null)
        {
            writer.WriteFieldBegin(TType.String, 2);
            writer.WriteString(customer);
            writer.WriteFieldEnd();
        }

        var address = Address;
        if (address is not null)
        {
            writer.WriteFieldBegin(TType.Struct, 3);
            address.Write(ref writer);
            writer.WriteFieldEnd();
        }

        var items = Items;
        if (items is not null)
        {
            writer.WriteFieldBegin(TType.List, 4);
            writer.WriteListBegin(TType.Struct, items.Count);
            for (var i = 0; i < items.Count; i++)
            {
                items[i].Write(ref writer);
            }

            writer.WriteListEnd();
            writer.WriteFieldEnd();
        }

        var attributes = Attributes;
        if (attributes is not null)
        {
            writer.WriteFieldBegin(TType.Map, 5);
            writer.WriteMapBegin(TType.String, TType.String, attributes.Count);

            // foreach over the concrete Dictionary uses its struct enumerator: no allocation.
            foreach (var entry in attributes)
            {
                writer.WriteString(entry.Key);
                writer.WriteString(entry.Value);
            }

            writer.WriteMapEnd();
            writer.WriteFieldEnd();
        }

        if ((_isset & IssetStatus) != 0)
        {
            writer.WriteFieldBegin(TType.I32, 6);
            writer.WriteI32(_status);
            writer.WriteFieldEnd();
        }

        var token = Token;
        if (token is not null)
        {
            writer.WriteFieldBegin(TType.String, 7);
            writer.WriteBinary(token);
            writer.WriteFieldEnd();
        }

        writer.WriteFieldStop();
        writer.WriteStructEnd(scope);
    }

    public void Read<TReader>(ref TReader reader)
        where TReader : IThriftReader, allows ref struct
    {
        var scope = reader.ReadStructBegin();
        while (true)
        {
            var field = reader.ReadFieldBegin();
            if (field.IsStop)
            {
                break;
            }

            switch (field.Id)
            {
                case 1:
                    if (field.Type == TType.I64)
                    {
                        Id = reader.ReadI64();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                case 2:
                    if (field.Type == TType.String)
                    {
                        Customer = reader.ReadString();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                case 3:
                    if (field.Type == TType.Struct)
                    {
                        var address = new Address();
                        address.Read(ref reader);
                        Address = address;
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                case 4:
                    if (field.Type == TType.List)
                    {
                        var list = reader.ReadListBegin();
                        if (list.Count == 0 || list.ElementType == TType.Struct)
                        {
                            var items = new List<Item>(list.Count);
                            for (var i = 0; i < list.Count; i++)
                            {
                                var item = new Item();
                                item.Read(ref reader);
                                items.Add(item);
                            }

                            Items = items;
                        }
                        else
                        {
                            // Elements of another type: the field does not match this IDL, skip them.
                            for (var i = 0; i < list.Count; i++)
                            {
                                reader.Skip(list.ElementType);
                            }
                        }

                        reader.ReadListEnd();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                case 5:
                    if (field.Type == TType.Map)
                    {
                        var map = reader.ReadMapBegin();
                        if (map.Count == 0 || (map.KeyType == TType.String && map.ValueType == TType.String))
                        {
                            var attributes = new Dictionary<string, string>(map.Count);
                            for (var i = 0; i < map.Count; i++)
                            {
                                var key = reader.ReadString();
                                attributes[key] = reader.ReadString();
                            }

                            Attributes = attributes;
                        }
                        else
                        {
                            for (var i = 0; i < map.Count; i++)
                            {
                                reader.Skip(map.KeyType);
                                reader.Skip(map.ValueType);
                            }
                        }

                        reader.ReadMapEnd();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                case 6:
                    if (field.Type == TType.I32)
                    {
                        Status = reader.ReadI32();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                case 7:
                    if (field.Type == TType.String)
                    {
                        Token = reader.ReadBinary();
                    }
                    else
                    {
                        reader.Skip(field.Type);
                    }

                    break;
                default:
                    reader.Skip(field.Type);
                    break;
            }

            reader.ReadFieldEnd();
        }

        reader.ReadStructEnd(scope);
    }
}
