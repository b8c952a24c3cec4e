package plugin

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin/internal/pb"
)

// hangGrace is how long a send whose deadline expired waits for the
// plugin's answer before the plugin is presumed hung. The plugin sends
// under the same deadline, so one that honours it answers at once; the
// grace only absorbs scheduling delays on a loaded machine.
const hangGrace = 500 * time.Millisecond

// sizeCheckMargin: a message whose bodies and headers stay this far under
// MaxMessageBytes cannot exceed it once encoded, so its exact size is not
// computed.
const sizeCheckMargin = 1 << 20

// sendStream multiplexes a Plugin's sends over one SendStream (protocol
// version 2): each send writes one tagged request and waits for the answer
// with its id, which a single receiving goroutine hands over. The number of
// sends in flight is the callers' business (core's window).
type sendStream struct {
	p      *Plugin
	stream pb.Sender_SendStreamClient
	cancel context.CancelFunc

	// wsem serialises writes (gRPC streams allow one writer at a time);
	// a channel, so a caller can stop waiting for it when its ctx ends.
	wsem chan struct{}
	// sentLast is set, holding wsem, once CloseSend was called.
	sentLast bool

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *pb.SendStreamResponse
	failure *sdk.Error    // why the stream ended; set once, with done closed
	done    chan struct{} // closed when the stream has ended
}

// openSendStream opens p's send stream and starts reading its answers.
func openSendStream(p *Plugin) (*sendStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := p.rpc.SendStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &sendStream{
		p:       p,
		stream:  st,
		cancel:  cancel,
		wsem:    make(chan struct{}, 1),
		pending: make(map[uint64]chan *pb.SendStreamResponse),
		done:    make(chan struct{}),
	}
	go s.receive()
	return s, nil
}

// receive hands each answer to the send waiting for it until the stream
// ends, then fails every send still waiting.
func (s *sendStream) receive() {
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			s.end(err)
			return
		}
		s.mu.Lock()
		ch := s.pending[resp.GetId()]
		delete(s.pending, resp.GetId())
		s.mu.Unlock()
		if ch == nil {
			// The send gave up (cancelled) before its answer came.
			continue
		}
		ch <- resp // buffered: never blocks
	}
}

// end records why the stream ended, marks the plugin broken (a stream
// ends only with its process or connection) and wakes every waiter.
func (s *sendStream) end(err error) {
	msg := "the plugin ended the send stream"
	if !errors.Is(err, io.EOF) {
		msg = status.Convert(err).Message()
	}
	failure := s.p.transportFailed("send", msg)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failure != nil {
		return
	}
	s.failure = failure
	clear(s.pending)
	close(s.done)
	s.cancel()
}

// failed returns a copy of the stream's failure for one caller.
func (s *sendStream) failed() *sdk.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := *s.failure
	return &e
}

// closeSend tells the plugin no more requests follow. A writer stuck on a
// hung plugin is not waited for long: the plugin is killed anyway.
func (s *sendStream) closeSend() {
	select {
	case s.wsem <- struct{}{}:
		s.sentLast = true
		_ = s.stream.CloseSend()
		<-s.wsem
	case <-s.done:
	case <-time.After(100 * time.Millisecond):
	}
}

// close releases the stream once the plugin is stopped.
func (s *sendStream) close() { s.cancel() }

// send is Plugin.send over the stream; see there. ctx is live on entry.
func (s *sendStream) send(ctx context.Context, msg *sdk.Message) (*sdk.Receipt, bool, error) {
	req := &pb.SendStreamRequest{Message: messageToPB(msg)}
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d)
		if left <= 0 {
			return nil, false, notAttempted(sdk.Transient("plugin %s: send not attempted: %v", s.p.name, context.DeadlineExceeded))
		}
		req.TimeoutMicros = max(left.Microseconds(), 1)
	}
	// gRPC would refuse an oversized message only after it has ended
	// the stream for everyone: refuse it here.
	if roughSize(msg) > MaxMessageBytes-sizeCheckMargin && proto.Size(req) > MaxMessageBytes {
		return nil, false, sdk.Permanent("plugin %s: send: message exceeds the %d MiB plugin transport limit",
			s.p.name, MaxMessageBytes>>20)
	}

	ch := make(chan *pb.SendStreamResponse, 1)
	s.mu.Lock()
	if s.failure != nil {
		s.mu.Unlock()
		return nil, false, notAttempted(s.failed())
	}
	s.next++
	id := s.next
	req.Id = id
	s.pending[id] = ch
	s.mu.Unlock()

	select {
	case s.wsem <- struct{}{}:
	case <-ctx.Done():
		s.forget(id)
		return nil, false, notAttempted(sdk.Transient("plugin %s: send not attempted: %v", s.p.name, ctx.Err()))
	case <-s.done:
		return nil, false, notAttempted(s.failed())
	}
	if s.sentLast {
		<-s.wsem
		s.forget(id)
		return nil, false, notAttempted(sdk.Transient("plugin %s was stopped before the send", s.p.name))
	}
	err := s.stream.Send(req)
	<-s.wsem
	if err != nil {
		// A failed write never reached the plugin; the stream is over
		// (receive reports why, the plugin is restarted).
		s.forget(id)
		<-s.done
		return nil, false, notAttempted(s.failed())
	}

	select {
	case resp := <-ch:
		return s.result(resp)
	case <-s.done:
		return s.answered(ch)
	case <-ctx.Done():
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Cancelled, not timed out: tell the plugin, and do not wait.
		s.forget(id)
		s.write(&pb.SendStreamRequest{Id: id, Cancel: true})
		return nil, false, sdk.Transient("plugin %s: send cancelled: %v", s.p.name, ctx.Err())
	}
	// The plugin's own context for this send expires now too: one that
	// honours it answers within the grace; one that does not is hung.
	grace := time.NewTimer(hangGrace)
	defer grace.Stop()
	select {
	case resp := <-ch:
		return s.result(resp)
	case <-s.done:
		return s.answered(ch)
	case <-grace.C:
	}
	s.forget(id)
	return nil, true, sdk.Transient("plugin %s: send timed out: no answer before the deadline", s.p.name)
}

// write sends req if the stream is free now; a cancel is best effort.
func (s *sendStream) write(req *pb.SendStreamRequest) {
	select {
	case s.wsem <- struct{}{}:
		if !s.sentLast {
			_ = s.stream.Send(req)
		}
		<-s.wsem
	default:
	}
}

// forget drops the waiter for id; a late answer is then discarded.
func (s *sendStream) forget(id uint64) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// answered returns the answer that may have arrived just before the
// stream ended, or the stream's failure.
func (s *sendStream) answered(ch chan *pb.SendStreamResponse) (*sdk.Receipt, bool, error) {
	select {
	case resp := <-ch:
		return s.result(resp)
	default:
		return nil, false, s.failed()
	}
}

// result decodes an answer.
func (s *sendStream) result(resp *pb.SendStreamResponse) (*sdk.Receipt, bool, error) {
	switch res := resp.GetResult().(type) {
	case *pb.SendStreamResponse_Receipt:
		return &sdk.Receipt{ProviderID: res.Receipt.GetProviderId(), Response: res.Receipt.GetResponse()}, false, nil
	case *pb.SendStreamResponse_Error:
		return nil, false, errorFromPB(res.Error)
	}
	return nil, false, sdk.Transient("plugin %s: send: response has neither receipt nor error", s.p.name)
}

// roughSize is a lower bound of msg's encoded size: its strings.
func roughSize(m *sdk.Message) int {
	n := len(m.MessageID) + len(m.From) + len(m.To) + len(m.ReplyTo) + len(m.Subject) + len(m.Text) + len(m.HTML) + len(m.ReturnPath)
	for _, h := range m.Headers {
		n += len(h.Name) + len(h.Value)
	}
	return n
}
