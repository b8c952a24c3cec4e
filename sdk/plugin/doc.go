// Package plugin is the transport of campaignd's sender plugins: a Sender
// (package sdk) served and called over hashicorp/go-plugin's gRPC protocol.
// It holds both sides of the connection:
//
//   - the plugin side: Serve runs a Sender as a plugin process; a plugin's
//     main is one line, func main() { plugin.Serve(&mySender{}) };
//   - the host side: Launch starts one plugin process and returns it as a
//     Sender (Plugin), and Pool keeps one warm, restarted-on-crash process
//     per configured sender.
//
// The wire contract is internal/pb/sender.proto (gRPC, Handshake), so a
// plugin can be written in any language. It has two protocol versions,
// negotiated by go-plugin at start: ProtocolVersionStream, where a
// process's sends share one stream and are answered out of order by
// sequence id, and ProtocolVersionUnary, one unary call per send, which a
// plugin built before the stream speaks; Launch offers both and Serve
// prefers the stream.
// The plain types that cross it (Message, Receipt, Error, ...) are in
// package sdk, which the campaignd core imports without this package's
// gRPC and go-plugin dependencies. The Check call (sdk.Checker) is
// optional on the wire: a plugin without it, or built before it existed,
// answers UNIMPLEMENTED and Plugin.Check reports sdk.ErrCheckUnsupported,
// so old plugins keep working with a newer host.
package plugin
