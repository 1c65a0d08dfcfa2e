package broker

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// TestPageTokenLength: every token issued is one cursor takes back; a
// cursor too long for a token (found by FuzzPageToken: 1,291 characters
// where cursor takes 512) is an error when issued, not a token the broker
// then refuses.
func TestPageTokenLength(t *testing.T) {
	p := pageTokens{key: bytes.Repeat([]byte{1}, 32)}
	req := &brokerv1.ListMachinesRequest{Datacenter: "dc1"}
	for _, cursor := range []string{"dc1-r001-u01", strings.Repeat("n", 253)} {
		token, err := p.issue(req, cursor)
		if err != nil {
			t.Fatalf("issue(%d characters): %v", len(cursor), err)
		}
		next := &brokerv1.ListMachinesRequest{Datacenter: "dc1", PageToken: token}
		if got, err := p.cursor(next); err != nil || got != cursor {
			t.Errorf("cursor of the token after %d characters = %d characters, %v", len(cursor), len(got), err)
		}
	}
	if token, err := p.issue(req, strings.Repeat("n", 400)); err == nil {
		_, err := p.cursor(&brokerv1.ListMachinesRequest{Datacenter: "dc1", PageToken: token})
		t.Errorf("issued a token of %d characters for a 400-character cursor; cursor answers %v (%s)", len(token), err, status.Code(err))
	} else if status.Code(err) == codes.InvalidArgument {
		t.Errorf("issue's error %v is the caller's fault; it is the inventory's", err)
	}
}
