// Package pb is the generated gRPC code for sender.proto, the wire contract
// between campaignd and its sender plugins. Do not edit the .pb.go files:
// change sender.proto and run `make proto`, which regenerates them with
// pinned, locally installed buf and protoc-gen-go(-grpc); CI can check that
// the committed code matches. Plugins in Go use package sdk/plugin instead.
package pb
