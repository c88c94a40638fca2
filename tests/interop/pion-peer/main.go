// A Pion peer for tests/interop.rs: one data channel, copy-paste tokens through files, the same
// arguments as werift-peer.mjs and aiortc-peer.py:
//
//	pion-peer offer|answer send|recv FILE OFFER_TOKEN ANSWER_TOKEN
//
// offer: opens the channel, writes the offer token, waits for the answer token.
// answer: waits for the offer token, writes the answer token, takes the peer's channel.
// send: sends FILE as binary messages, waits until every byte left (BufferedAmount 0),
// closes the channel and waits for it to be closed.
// recv: writes every binary message to FILE until the channel closes.
// Tokens are base64 of the JSON {"type","sdp"}, written to a temporary name and renamed.
// Exit 0 on success, 1 on any error; progress on stderr ("pion: ..."), and Pion's own log lines
// at warning level and above.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pion/webrtc/v3"
)

const (
	chunk     = 16 * 1024
	highWater = 1024 * 1024
)

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pion: "+format+"\n", args...)
}

func fail(format string, args ...interface{}) {
	logf(format, args...)
	os.Exit(1)
}

func writeToken(path string, desc *webrtc.SessionDescription) {
	text, err := json.Marshal(map[string]string{"type": desc.Type.String(), "sdp": desc.SDP})
	if err != nil {
		fail("encoding a token: %v", err)
	}
	token := base64.StdEncoding.EncodeToString(text) + "\n"
	if err := os.WriteFile(path+".tmp", []byte(token), 0o644); err != nil {
		fail("writing %s: %v", path, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		fail("renaming %s: %v", path, err)
	}
}

func readToken(path string) webrtc.SessionDescription {
	for {
		raw, err := os.ReadFile(path)
		if err == nil {
			text, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
			if err != nil {
				fail("%s is not base64: %v", path, err)
			}
			var desc webrtc.SessionDescription
			if err := json.Unmarshal(text, &desc); err != nil {
				fail("%s is not a session description: %v", path, err)
			}
			return desc
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func send(dc *webrtc.DataChannel, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		fail("reading %s: %v", file, err)
	}
	low := make(chan struct{}, 1)
	dc.SetBufferedAmountLowThreshold(highWater / 2)
	dc.OnBufferedAmountLow(func() {
		select {
		case low <- struct{}{}:
		default:
		}
	})
	for offset := 0; offset < len(data); offset += chunk {
		for dc.BufferedAmount() > highWater {
			select {
			case <-low:
			case <-time.After(100 * time.Millisecond):
			}
		}
		end := offset + chunk
		if end > len(data) {
			end = len(data)
		}
		if err := dc.Send(data[offset:end]); err != nil {
			fail("sending: %v", err)
		}
	}
	for dc.BufferedAmount() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	logf("sent %d bytes; closing the channel", len(data))
	if err := dc.Close(); err != nil {
		fail("closing the channel: %v", err)
	}
}

func main() {
	if len(os.Args) != 6 {
		fail("usage: pion-peer offer|answer send|recv FILE OFFER_TOKEN ANSWER_TOKEN")
	}
	role, mode, file, offerPath, answerPath := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	if (role != "offer" && role != "answer") || (mode != "send" && mode != "recv") {
		fail("usage: pion-peer offer|answer send|recv FILE OFFER_TOKEN ANSWER_TOKEN")
	}

	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		fail("new peer connection: %v", err)
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		logf("connection %s", s)
		if s == webrtc.PeerConnectionStateFailed {
			fail("the connection failed")
		}
	})

	finished := make(chan struct{})
	use := func(dc *webrtc.DataChannel) {
		var received bytes.Buffer
		dc.OnOpen(func() {
			logf("channel open")
			if mode == "send" {
				go send(dc, file)
			}
		})
		dc.OnMessage(func(msg webrtc.DataChannelMessage) {
			if mode == "send" {
				// A dcsend receiver greets with a control message; a plain sender ignores it.
				logf("ignoring a message of %d bytes", len(msg.Data))
				return
			}
			if msg.IsString {
				fail("unexpected text message from a --raw sender: %.80s", msg.Data)
			}
			received.Write(msg.Data)
		})
		dc.OnClose(func() {
			logf("channel closed")
			if mode == "recv" {
				if err := os.WriteFile(file, received.Bytes(), 0o644); err != nil {
					fail("writing %s: %v", file, err)
				}
				logf("received %d bytes", received.Len())
			}
			close(finished)
		})
	}
	if role == "offer" {
		dc, err := pc.CreateDataChannel("interop", nil)
		if err != nil {
			fail("creating the channel: %v", err)
		}
		use(dc)
	} else {
		pc.OnDataChannel(use)
	}

	gathered := webrtc.GatheringCompletePromise(pc)
	if role == "offer" {
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			fail("creating the offer: %v", err)
		}
		if err := pc.SetLocalDescription(offer); err != nil {
			fail("setting the offer: %v", err)
		}
		<-gathered
		writeToken(offerPath, pc.LocalDescription())
		if err := pc.SetRemoteDescription(readToken(answerPath)); err != nil {
			fail("setting the answer: %v", err)
		}
	} else {
		if err := pc.SetRemoteDescription(readToken(offerPath)); err != nil {
			fail("setting the offer: %v", err)
		}
		answer, err := pc.CreateAnswer(nil)
		if err != nil {
			fail("creating the answer: %v", err)
		}
		if err := pc.SetLocalDescription(answer); err != nil {
			fail("setting the answer: %v", err)
		}
		<-gathered
		writeToken(answerPath, pc.LocalDescription())
	}
	<-finished
	// What Pion logs while the association winds down (the issue: "sending reset packet in
	// non-established state") comes in the next moments; give it the time to show.
	time.Sleep(500 * time.Millisecond)
	// The other side may have ended the connection first (dcsend does once both ends reset
	// their streams): Close then reports the closed DTLS connection, which is no failure.
	if err := pc.Close(); err != nil {
		logf("closing: %v", err)
	}
	os.Exit(0)
}
