package plugin

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin/internal/pb"
)

// The plugin protocol versions negotiated by go-plugin: the host offers
// every version it speaks and the plugin picks the highest it serves. A
// version is added only when the wire contract (internal/pb/sender.proto)
// gains something a host must know the plugin has.
const (
	// ProtocolVersionUnary is protocol 1: one unary Send call per message.
	// A plugin built against an SDK before the stream serves only this.
	ProtocolVersionUnary = 1
	// ProtocolVersionStream is protocol 2: the messages of a plugin
	// process travel over one SendStream, answered out of order by
	// sequence id; Send is still served.
	ProtocolVersionStream = 2
	// ProtocolVersion is the newest version, the one Serve prefers.
	ProtocolVersion = ProtocolVersionStream
)

// Handshake is the go-plugin handshake that host and plugin must agree on.
// The magic cookie is not a security measure: it only makes a plugin binary
// started by hand print a notice and exit 1 instead of waiting for a host.
// Hosts other than Launch (for example a plugin test harness written by
// hand) must use exactly this value.
//
// Its ProtocolVersion is only go-plugin's fallback for a host that offers
// no version list; Launch and Serve negotiate with VersionedPlugins.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersionUnary,
	MagicCookieKey:   "CAMPAIGND_SENDER_PLUGIN",
	MagicCookieValue: "7c0e2f4a9b1d4e8f-campaignd-sender-v1",
}

// MaxMessageBytes is the largest gRPC message either side of the plugin
// connection sends or accepts (64 MiB). A Message whose encoding is larger
// fails with ClassPermanent without reaching the plugin.
const MaxMessageBytes = 64 << 20

// pluginKey is the name under which the sender is dispensed.
const pluginKey = "sender"

// parentPollInterval is how often a plugin checks that its host is alive.
const parentPollInterval = 200 * time.Millisecond

// exitHostGone is the exit status of a plugin whose host died.
const exitHostGone = 3

// Serve runs s as a campaignd sender plugin and returns only after the
// host has shut the plugin down; call it last in main:
//
//	func main() { plugin.Serve(&sender{}) }
//
// It speaks go-plugin's gRPC protocol (versions ProtocolVersionStream and
// ProtocolVersionUnary, whichever the host prefers; AutoMTLS
// when the host asks for it, messages up to MaxMessageBytes) and answers
// every classified failure of s inside the response, so the host sees the
// same *Error the plugin returned. An error from Configure that is not an
// *Error becomes ClassConfig; one from Send, Info or Check becomes
// ClassTransient. When s also implements sdk.Checker, the host's Check
// calls it; otherwise the host's Check reports sdk.ErrCheckUnsupported.
// A nil Receipt with a nil error is sent as an empty Receipt. Over the
// stream, s.Send runs concurrently for every message the host has in
// flight (the host bounds how many), each under the host's deadline for it.
//
// Started without a host (by hand), Serve prints a notice and exits 1. The
// process exits by itself, within about a second, when its host dies, even
// if the host was killed with SIGKILL and never said goodbye: the plugin
// watches its parent process id. While the host lives, SIGTERM does not
// stop the plugin (a service manager signalling the host's whole process
// group must not cut its in-flight sends short); the host stops it. Logs
// go through sdk.Logger.
func Serve(s sdk.Sender) {
	if s == nil {
		panic("plugin.Serve: nil Sender")
	}
	logger := sdk.Logger()
	if exitWithParent() {
		outliveSIGTERM(logger)
	}
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]goplugin.PluginSet{
			ProtocolVersionUnary:  {pluginKey: &grpcPlugin{impl: s}},
			ProtocolVersionStream: {pluginKey: &grpcPlugin{impl: s}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts,
				grpc.MaxRecvMsgSize(MaxMessageBytes),
				grpc.MaxSendMsgSize(MaxMessageBytes))...)
		},
		Logger: logger,
	})
}

// exitWithParent makes the plugin exit when the host that started it dies.
// go-plugin alone does not do this: its server keeps listening after the
// host's connection drops, and stdin is the host's own stdin, not a pipe
// that closes. When the parent dies the kernel re-parents the plugin (to
// init or a subreaper), so a change of the parent pid means the host is
// gone. Nothing is logged: the log pipe died with the host. It reports
// whether it watches a host.
func exitWithParent() bool {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		return false // not started by a host; go-plugin exits on its own
	}
	ppid := os.Getppid()
	if ppid <= 1 {
		return false // already orphaned or started by init: nothing to watch
	}
	go func() {
		for {
			time.Sleep(parentPollInterval)
			if os.Getppid() != ppid {
				os.Exit(exitHostGone)
			}
		}
	}()
	return true
}

// outliveSIGTERM keeps a plugin running through SIGTERM while its host
// lives. A service manager that stops the host's whole process group or
// cgroup (systemd's default KillMode=control-group) signals the plugin at
// the same moment as the host, and the host, draining, still needs the
// plugin to finish the sends in flight: killed then, they would be lost
// mid-flight and sent again. The host stops the plugin once it is done
// with it, and exitWithParent ends it if the host dies; go-plugin already
// ignores SIGINT (a terminal's ^C) for the same reason. SIGKILL still
// works.
func outliveSIGTERM(logger hclog.Logger) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	go func() {
		for range ch {
			logger.Debug("SIGTERM ignored: the host stops this plugin when it is done with it")
		}
	}()
}

// grpcPlugin binds the Sender to go-plugin on both sides: impl is set in
// the plugin process and nil in the host.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl sdk.Sender
}

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterSenderServer(s, &server{impl: p.impl})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewSenderClient(c), nil
}

// server serves a Sender over gRPC. Classified failures travel in the
// response; a gRPC status error is reserved for transport failures.
type server struct {
	pb.UnimplementedSenderServer
	impl sdk.Sender
}

func (s *server) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	opts := req.GetOptions()
	if opts == nil {
		opts = map[string]string{}
	}
	if err := s.impl.Configure(ctx, opts); err != nil {
		var e *sdk.Error
		if !errors.As(err, &e) {
			e = sdk.ConfigError("%v", err)
		}
		return &pb.ConfigureResponse{Error: errorToPB(e)}, nil
	}
	return &pb.ConfigureResponse{}, nil
}

func (s *server) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoResponse, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return &pb.InfoResponse{Error: errorToPB(sdk.AsError(err))}, nil
	}
	return &pb.InfoResponse{
		Name:           info.Name,
		Version:        info.Version,
		MaxPerSecond:   info.MaxPerSecond,
		MaxConcurrency: int32(info.MaxConcurrency),
		Options:        info.Options,
		SecretOptions:  info.SecretOptions,
		DnsRecords:     dnsRecordsToPB(info.DNSRecords),
	}, nil
}

func (s *server) Send(ctx context.Context, req *pb.SendRequest) (*pb.SendResponse, error) {
	r, e := s.send(ctx, req.GetMessage())
	if e != nil {
		return &pb.SendResponse{Result: &pb.SendResponse_Error{Error: e}}, nil
	}
	return &pb.SendResponse{Result: &pb.SendResponse_Receipt{Receipt: r}}, nil
}

// send runs the Sender's Send for one message and encodes its answer:
// a receipt or a classified error, exactly one non-nil.
func (s *server) send(ctx context.Context, m *pb.Message) (*pb.Receipt, *pb.Error) {
	if m == nil {
		return nil, errorToPB(sdk.Permanent("send request without a message"))
	}
	r, err := s.impl.Send(ctx, messageFromPB(m))
	if err != nil {
		return nil, errorToPB(sdk.AsError(err))
	}
	if r == nil {
		return &pb.Receipt{}, nil
	}
	return &pb.Receipt{ProviderId: r.ProviderID, Response: r.Response}, nil
}

// SendStream sends every message the host writes concurrently, each
// under the deadline the host gave it, and answers each as it finishes.
// It returns once the host has closed its side and every send has been
// answered, or when the stream breaks. An answer that cannot be written
// (say, a receipt that is not valid UTF-8) ends the stream with that
// error, as it would fail a unary Send: the host sees a transport failure.
func (s *server) SendStream(stream pb.Sender_SendStreamServer) error {
	ctx, cancelAll := context.WithCancel(stream.Context())
	defer cancelAll()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		cancels = make(map[uint64]context.CancelFunc)
		wmu     sync.Mutex // one writer at a time; guards ended
		ended   bool       // the handler is returning: no more writes
		failed  = make(chan error, 1)
	)
	answer := func(resp *pb.SendStreamResponse) {
		wmu.Lock()
		defer wmu.Unlock()
		if ended {
			return
		}
		if err := stream.Send(resp); err != nil {
			ended = true
			failed <- err
		}
	}
	// Each send runs on a worker of the stream: an idle one, or a new one
	// when all are busy (so as many run at once as before, one per send in
	// flight). The workers end with the stream. A send's goroutine is then
	// not started afresh for every message, its stack grown again to what
	// the sender's network code needs.
	jobs := make(chan func())
	run := func(send func()) {
		wg.Add(1)
		f := func() {
			defer wg.Done()
			send()
		}
		select {
		case jobs <- f:
		default:
			go func() {
				f()
				for {
					select {
					case f := <-jobs:
						f()
					case <-ctx.Done():
						return
					}
				}
			}()
		}
	}
	received := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				received <- err
				return
			}
			id := req.GetId()
			if req.GetCancel() {
				mu.Lock()
				if cancel := cancels[id]; cancel != nil {
					cancel()
				}
				mu.Unlock()
				continue
			}
			mctx, cancel := context.WithCancel(ctx)
			if t := req.GetTimeoutMicros(); t > 0 {
				mctx, cancel = context.WithTimeout(ctx, time.Duration(t)*time.Microsecond)
			}
			mu.Lock()
			cancels[id] = cancel
			mu.Unlock()
			run(func() {
				r, e := s.send(mctx, req.GetMessage())
				mu.Lock()
				delete(cancels, id)
				mu.Unlock()
				cancel()
				resp := &pb.SendStreamResponse{Id: id}
				if e != nil {
					resp.Result = &pb.SendStreamResponse_Error{Error: e}
				} else {
					resp.Result = &pb.SendStreamResponse_Receipt{Receipt: r}
				}
				answer(resp)
			})
		}
	}()
	var err error
	select {
	case err = <-failed:
	case err = <-received:
		if errors.Is(err, io.EOF) {
			// The host is done sending: answer what is in flight.
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
				err = nil
			case err = <-failed:
			}
		}
	}
	wmu.Lock()
	ended = true
	wmu.Unlock()
	return err
}

// Check runs the plugin's optional sdk.Checker. A Sender without one
// answers UNIMPLEMENTED, as a plugin built before the call existed does,
// so the host sees one answer for both.
func (s *server) Check(ctx context.Context, _ *pb.CheckRequest) (*pb.CheckResponse, error) {
	c, ok := s.impl.(sdk.Checker)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "method Check not implemented")
	}
	if err := c.Check(ctx); err != nil {
		return &pb.CheckResponse{Error: errorToPB(sdk.AsError(err))}, nil
	}
	return &pb.CheckResponse{}, nil
}

var classToPB = map[sdk.Class]pb.Class{
	sdk.ClassTransient: pb.Class_CLASS_TRANSIENT,
	sdk.ClassThrottled: pb.Class_CLASS_THROTTLED,
	sdk.ClassPermanent: pb.Class_CLASS_PERMANENT,
	sdk.ClassBounced:   pb.Class_CLASS_BOUNCED,
	sdk.ClassConfig:    pb.Class_CLASS_CONFIG,
}

// errorToPB encodes e; an unknown class travels as unspecified, which the
// host reads as transient. RetryAfter is rounded up to whole milliseconds
// so a short positive delay never becomes "host's choice".
func errorToPB(e *sdk.Error) *pb.Error {
	ms := int64(e.RetryAfter / time.Millisecond)
	if e.RetryAfter%time.Millisecond > 0 {
		ms++
	}
	return &pb.Error{
		Class:        classToPB[e.Class],
		SmtpCode:     int32(e.SMTPCode),
		EnhancedCode: e.EnhancedCode,
		HttpStatus:   int32(e.HTTPStatus),
		Message:      e.Message,
		RetryAfterMs: ms,
	}
}

// errorFromPB decodes e; an unspecified or unknown class becomes transient.
func errorFromPB(e *pb.Error) *sdk.Error {
	class := sdk.ClassTransient
	for c, p := range classToPB {
		if p == e.GetClass() {
			class = c
		}
	}
	return &sdk.Error{
		Class:        class,
		SMTPCode:     int(e.GetSmtpCode()),
		EnhancedCode: e.GetEnhancedCode(),
		HTTPStatus:   int(e.GetHttpStatus()),
		Message:      e.GetMessage(),
		RetryAfter:   time.Duration(e.GetRetryAfterMs()) * time.Millisecond,
	}
}

func messageToPB(m *sdk.Message) *pb.Message {
	out := &pb.Message{
		CampaignId:  m.CampaignID,
		RecipientId: m.RecipientID,
		MessageId:   m.MessageID,
		From:        m.From,
		To:          m.To,
		ReplyTo:     m.ReplyTo,
		Subject:     m.Subject,
		Text:        m.Text,
		Html:        m.HTML,
		ReturnPath:  m.ReturnPath,
	}
	if !m.Date.IsZero() {
		out.Date = timestamppb.New(m.Date)
		_, off := m.Date.Zone()
		out.DateUtcOffsetSeconds = int32(off)
	}
	if len(m.Headers) > 0 {
		out.Headers = make([]*pb.Header, len(m.Headers))
		for i, h := range m.Headers {
			out.Headers[i] = &pb.Header{Name: h.Name, Value: h.Value}
		}
	}
	return out
}

func messageFromPB(m *pb.Message) *sdk.Message {
	out := &sdk.Message{
		CampaignID:  m.GetCampaignId(),
		RecipientID: m.GetRecipientId(),
		MessageID:   m.GetMessageId(),
		From:        m.GetFrom(),
		To:          m.GetTo(),
		ReplyTo:     m.GetReplyTo(),
		Subject:     m.GetSubject(),
		Text:        m.GetText(),
		HTML:        m.GetHtml(),
		ReturnPath:  m.GetReturnPath(),
	}
	if m.GetDate() != nil {
		out.Date = m.GetDate().AsTime()
		if off := int(m.GetDateUtcOffsetSeconds()); off != 0 {
			out.Date = out.Date.In(time.FixedZone("", off))
		}
	}
	if len(m.GetHeaders()) > 0 {
		out.Headers = make([]sdk.Header, len(m.GetHeaders()))
		for i, h := range m.GetHeaders() {
			out.Headers[i] = sdk.Header{Name: h.GetName(), Value: h.GetValue()}
		}
	}
	return out
}

// dnsRecordsToPB encodes Info's DNS records; nil stays nil.
func dnsRecordsToPB(rs []sdk.DNSRecord) []*pb.DNSRecord {
	if len(rs) == 0 {
		return nil
	}
	out := make([]*pb.DNSRecord, len(rs))
	for i, r := range rs {
		out[i] = &pb.DNSRecord{Name: r.Name, Type: r.Type, Value: r.Value}
	}
	return out
}

// dnsRecordsFromPB decodes Info's DNS records; a plugin built before the
// field sends none and gets nil.
func dnsRecordsFromPB(rs []*pb.DNSRecord) []sdk.DNSRecord {
	if len(rs) == 0 {
		return nil
	}
	out := make([]sdk.DNSRecord, len(rs))
	for i, r := range rs {
		out[i] = sdk.DNSRecord{Name: r.GetName(), Type: r.GetType(), Value: r.GetValue()}
	}
	return out
}
