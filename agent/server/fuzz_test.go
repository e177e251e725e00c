//go:build linux && !hwtests

package server_test

import (
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/agent/proto"
	"github.com/iommu-agent/iommu-agent/agent/server"
)

// FuzzServe sends any frame payload to a live agent after hello: whatever it
// is, an answer comes back on the same connection (never a crash, a hang or
// a hangup for a single bad frame), and a well-formed list still works.
func FuzzServe(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"op":"list"}`,
		`{"id":2,"op":"acquire","group":1}`,
		`{"id":3,"op":"acquire","device":"0000:00:01.0","mode":"fds"}`,
		`{"id":4,"op":"release","lease":"L1"}`,
		`{"id":5,"op":"map","lease":"L1","length":4096}`,
		`{"id":6,"op":"dma","lease":"L1","write":true,"data":"AAAA"}`,
		`{"id":7,"op":"unmap","lease":"L1","iova":18446744073709551615,"length":2}`,
		`{"id":8,"op":"acquire","group":-1,"memlock":18446744073709551615}`,
		`{"id":9,"op":"status"}`,
	} {
		f.Add([]byte(s))
	}
	sock, _ := start(f, server.Options{Devices: edus(2)})
	c, err := proto.Dial(sock)
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	c.Send(proto.Request{ID: 1, Op: proto.OpHello, Version: proto.Version})
	var hello proto.Response
	if _, err := c.Recv(&hello); err != nil || hello.Error != nil {
		f.Fatal(err, hello.Error)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > proto.MaxFrame {
			return
		}
		if err := c.SendRaw(proto.Frame(payload)); err != nil {
			t.Fatal(err)
		}
		c.UnixConn().SetReadDeadline(time.Now().Add(30 * time.Second))
		var r proto.Response
		fds, err := c.Recv(&r)
		proto.CloseFDs(fds)
		if err != nil {
			t.Fatalf("no answer to %q: %v", payload, err)
		}
		// A good frame resets the agent's count of bad frames in a row
		// (eight and it hangs up), and shows the session still works.
		c.Send(proto.Request{ID: 2, Op: proto.OpStatus})
		var st proto.Response
		fds, err = c.Recv(&st)
		proto.CloseFDs(fds)
		if err != nil || st.Error != nil || st.ID != 2 {
			t.Fatalf("status after %q: %+v, %v", payload, st.Error, err)
		}
	})
}
