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
// call and the send stream existed does: it offers protocol version 1 only
// (unary Send), and the service it registers has neither Check nor
// SendStream, so gRPC itself answers those UNIMPLEMENTED ("unknown
// method").
func serveOldSDK() {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: plugin.Handshake,
		VersionedPlugins: map[int]goplugin.PluginSet{
			1: {"sender": &oldPlugin{}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts,
				grpc.MaxRecvMsgSize(plugin.MaxMessageBytes),
				grpc.MaxSendMsgSize(plugin.MaxMessageBytes))...)
		},
	})
}

type oldPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (*oldPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	desc := pb.Sender_ServiceDesc
	desc.Methods = slices.DeleteFunc(slices.Clone(desc.Methods), func(m grpc.MethodDesc) bool { return m.MethodName == "Check" })
	desc.Streams = nil // no SendStream

	s.RegisterService(&desc, oldServer{})
	return nil
}

func (*oldPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

// oldServer accepts any options and every message; a message with subject
// "slow" waits for its deadline, as a protocol-1 plugin honouring it does.
type oldServer struct{ pb.UnimplementedSenderServer }

func (oldServer) Configure(context.Context, *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	return &pb.ConfigureResponse{}, nil
}

func (oldServer) Info(context.Context, *pb.InfoRequest) (*pb.InfoResponse, error) {
	return &pb.InfoResponse{Name: "old", Version: "0.9"}, nil
}

func (oldServer) Send(ctx context.Context, req *pb.SendRequest) (*pb.SendResponse, error) {
	if req.GetMessage().GetSubject() == "slow" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &pb.SendResponse{Result: &pb.SendResponse_Receipt{Receipt: &pb.Receipt{ProviderId: "old"}}}, nil
}
