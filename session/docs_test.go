package session

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/waterspout/waterspout/internal/mdtest"
)

const protocolDoc = "../docs/PROTOCOL.md"

// TestProtocolDisconnectTable holds the disconnect code table of
// docs/PROTOCOL.md to Disconnects: the same codes, reasons and reconnect
// flags, so a client written from the page acts as the server means.
func TestProtocolDisconnectTable(t *testing.T) {
	var doc []Disconnect
	for _, r := range mdtest.Table(t, protocolDoc, "| code | reason | reconnect | what the client does |") {
		code, err := strconv.Atoi(r[0])
		if err != nil || (r[2] != "yes" && r[2] != "no") {
			t.Fatalf("row %q", r)
		}
		doc = append(doc, Disconnect{code, r[1], r[2] == "yes"})
	}
	if !slices.Equal(doc, Disconnects) {
		t.Errorf("%s lists\n%v\nsession.Disconnects is\n%v", protocolDoc, doc, Disconnects)
	}
}

// TestProtocolLimits holds the limits PROTOCOL.md states to the code: the
// defaults of the Limits table and the numbers of its "Fixed limits".
func TestProtocolLimits(t *testing.T) {
	want := map[string]int{"maxMessageBytes": DefaultMaxMessageBytes, "maxChannels": DefaultMaxChannels, "maxQueueBytes": DefaultMaxQueueBytes}
	for _, r := range mdtest.Table(t, protocolDoc, "| field | default | meaning |") {
		name := strings.Trim(r[0], "`")
		if w, ok := want[name]; ok && r[1] != strconv.Itoa(w) {
			t.Errorf("%s: default %s, the code's is %d", name, r[1], w)
		}
		delete(want, name)
	}
	for name := range want {
		t.Errorf("the Limits table lacks %s", name)
	}

	b, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, fixed, ok := strings.Cut(string(b), "Fixed limits:")
	if !ok {
		t.Fatal(`no "Fixed limits:" paragraph`)
	}
	fixed, _, _ = strings.Cut(fixed, "\n\n")
	fixed = strings.Join(strings.Fields(fixed), " ")
	for _, s := range []string{
		fmt.Sprintf("channel names ≤ %d bytes", MaxChannelLen),
		fmt.Sprintf("epochs ≤ %d bytes", MaxEpochLen),
		fmt.Sprintf("idempotency keys ≤ %d bytes", MaxKeyLen),
		fmt.Sprintf("cursors ≤ %d characters and %d channels", MaxCursorLen, MaxCursorChannels),
		fmt.Sprintf("%d commands per WebSocket frame", maxCommandsPerFrame),
	} {
		if !strings.Contains(fixed, s) {
			t.Errorf("the fixed limits %q do not say %q", fixed, s)
		}
	}
}
