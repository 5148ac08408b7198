using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Trellis.Bench.Suite
{
    /// <summary>
    /// The suite's child role <c>--role kestrel-echo --port N</c>: the bare Kestrel ceiling of ../shared/PERFORMANCE.md,
    /// a Kestrel connection handler that answers the framed binary echo by patching the request's bytes, with no Thrift
    /// decoder, dispatch or encoder, so what is left is Kestrel's own socket, pipe and scheduling cost. Prints
    /// <c>listening PORT</c>, runs until stdin closes or SIGTERM/SIGINT, then prints <c>stats calls=N</c>.
    /// </summary>
    internal static class KestrelEcho
    {
        public static async Task<int> RunAsync(string[] args)
        {
            var port = Cli.Int(args, "--port", 0, 0, 65535);

            // no args: the suite's own options are not configuration for the host
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders().AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning); // stdout is the suite's
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.UseConnectionHandler<EchoConnectionHandler>()));
            await using var app = builder.Build();
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
                ?? throw new InvalidOperationException("Kestrel reports no bound address");
            Console.WriteLine($"listening {new Uri(address).Port}");
            await StopSignal.WaitAsync();
            await app.StopAsync();
            Console.WriteLine($"stats calls={EchoConnectionHandler.Calls}");
            return 0;
        }
    }

    /// <summary>
    /// Cuts 4-byte big-endian length-prefixed frames from the connection and answers each by copying it to the output
    /// and patching two bytes: a strict binary CALL <c>80 01 00 01</c>, name, seqid, args <c>0B 00 01</c> + string +
    /// stop becomes the REPLY <c>80 01 00 02</c>, the same name and seqid, result <c>0B 00 00</c> (success, field 0) +
    /// the same string + stop. Every reply cut from one read goes out with one flush.
    /// </summary>
    internal sealed class EchoConnectionHandler : ConnectionHandler
    {
        // a frame bigger than this is not the echo; the connection is dropped rather than buffered without end
        private const int MaxFrame = 16 * 1024 * 1024;

        private static long _calls;

        public static long Calls => Interlocked.Read(ref _calls);

        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            var input = connection.Transport.Input;
            var output = connection.Transport.Output;
            try
            {
                while (true)
                {
                    var read = await input.ReadAsync();
                    var buffer = read.Buffer;
                    var answered = Answer(ref buffer, output, out var bad);
                    input.AdvanceTo(buffer.Start, buffer.End);
                    if (answered > 0)
                    {
                        Interlocked.Add(ref _calls, answered);
                        if ((await output.FlushAsync()).IsCompleted)
                        {
                            return;
                        }
                    }

                    if (bad || read.IsCompleted || read.IsCanceled)
                    {
                        return; // Kestrel closes the connection; a peer sending anything but the echo gets no reply to it
                    }
                }
            }
            catch (ConnectionResetException)
            {
                // the load generator went away; nothing to answer
            }
        }

        /// <summary>Writes the reply of every whole frame at the start of <paramref name="buffer"/> and slices them off; <paramref name="bad"/> when a frame is not an echo call.</summary>
        private static int Answer(ref ReadOnlySequence<byte> buffer, PipeWriter output, out bool bad)
        {
            bad = false;
            var answered = 0;
            Span<byte> prefix = stackalloc byte[4];
            while (buffer.Length >= 4)
            {
                buffer.Slice(0, 4).CopyTo(prefix);
                var length = BinaryPrimitives.ReadInt32BigEndian(prefix);
                if (length is < 0 or > MaxFrame)
                {
                    bad = true;
                    break;
                }

                if (buffer.Length < 4L + length)
                {
                    break; // the rest of this frame comes with a later read
                }

                var frame = buffer.Slice(0, 4 + length);
                var reply = output.GetSpan(4 + length)[..(4 + length)];
                frame.CopyTo(reply);
                if (!Patch(reply[4..]))
                {
                    bad = true;
                    break;
                }

                output.Advance(4 + length);
                buffer = buffer.Slice(frame.End);
                answered++;
            }

            return answered;
        }

        /// <summary>Turns one echo CALL message into its REPLY in place; false when the bytes are not exactly that call.</summary>
        private static bool Patch(Span<byte> message)
        {
            // 80 01 00 01 | name length, name | seqid | 0B 00 01 | string length, string | 00
            if (message.Length < 4 + 4 + 4 + 3 + 4 + 1 || message[0] != 0x80 || message[1] != 0x01 || message[2] != 0x00 || message[3] != 0x01)
            {
                return false;
            }

            var nameLength = BinaryPrimitives.ReadInt32BigEndian(message[4..]);
            if (nameLength < 0 || nameLength > message.Length - 20)
            {
                return false;
            }

            var field = 4 + 4 + nameLength + 4;
            if (message[field] != 0x0B || message[field + 1] != 0x00 || message[field + 2] != 0x01)
            {
                return false;
            }

            var textLength = BinaryPrimitives.ReadInt32BigEndian(message[(field + 3)..]);
            if (textLength < 0 || field + 3 + 4 + textLength + 1 != message.Length || message[^1] != 0x00)
            {
                return false;
            }

            message[3] = 0x02; // CALL -> REPLY
            message[field + 2] = 0x00; // args field 1 -> result field 0 (success)
            return true;
        }
    }
}
