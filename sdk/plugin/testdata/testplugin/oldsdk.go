package main

import (
	"context"
	"slices"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/campaignd/campaignd/sdk/plugin"
	"github.com/campaignd/campaignd/sdk/plugin/internal/pb"
)

// serveOldSDK serves the Sender service as a plugin built before the Check
// call existed does: the service it registers has no Check method at all,
// so gRPC itself answers the call UNIMPLEMENTED ("unknown method").
func serveOldSDK() {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: plugin.Handshake,
		VersionedPlugins: map[int]goplugin.PluginSet{
			plugin.ProtocolVersion: {"sender": &oldPlugin{}},
		},
		GRPCServer: goplugin.DefaultGRPCServer,
	})
}

type oldPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (*oldPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	desc := pb.Sender_ServiceDesc
	desc.Methods = slices.DeleteFunc(slices.Clone(desc.Methods), func(m grpc.MethodDesc) bool { return m.MethodName == "Check" })
	s.RegisterService(&desc, oldServer{})
	return nil
}

func (*oldPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

// oldServer accepts any options and every message.
type oldServer struct{ pb.UnimplementedSenderServer }

func (oldServer) Configure(context.Context, *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	return &pb.ConfigureResponse{}, nil
}

func (oldServer) Info(context.Context, *pb.InfoRequest) (*pb.InfoResponse, error) {
	return &pb.InfoResponse{Name: "old", Version: "0.9"}, nil
}

func (oldServer) Send(context.Context, *pb.SendRequest) (*pb.SendResponse, error) {
	return &pb.SendResponse{Result: &pb.SendResponse_Receipt{Receipt: &pb.Receipt{ProviderId: "old"}}}, nil
}
