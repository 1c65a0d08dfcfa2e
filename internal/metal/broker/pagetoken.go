package broker

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// Page tokens of ListMachines are opaque to clients, bound to the query that
// issued them and authenticated by the broker, so a token is either one this
// broker returned for these filters or InvalidArgument, never a page of some
// other listing:
//
//	base64url(version | query digest | cursor | MAC)
//
// The query digest is a hash of the request's filters (the request without
// page_size and page_token: a client may change the page size between
// pages); the cursor is the last machine ID of the previous page; the MAC is
// an HMAC-SHA256 of the rest under a key that every broker replica of the
// inventory shares (stored in it, drawn by the first broker), so a token
// stays good across a restart or a failover to another replica.
const (
	pageTokenVersion = 1
	queryDigestLen   = 8
	pageMACLen       = 16
	// maxPageTokenLen bounds a token before it is decoded; the cursor is a
	// machine ID, far shorter.
	maxPageTokenLen = 512
)

// pageTokens issues and checks page tokens under one key.
type pageTokens struct {
	key []byte
}

// pageTokenKeyName names the page token key among the inventory's shared
// keys.
const pageTokenKeyName = "page-tokens"

func newPageTokens(ctx context.Context, store inventory.Store) (pageTokens, error) {
	fresh := make([]byte, sha256.Size)
	if _, err := rand.Read(fresh); err != nil {
		return pageTokens{}, fmt.Errorf("drawing the page token key: %w", err)
	}
	var key []byte
	err := store.InTx(ctx, func(ctx context.Context, tx inventory.Tx) error {
		var err error
		key, err = tx.SharedKey(ctx, pageTokenKeyName, fresh)
		return err
	})
	if err != nil {
		return pageTokens{}, fmt.Errorf("reading the page token key: %w", err)
	}
	return pageTokens{key: key}, nil
}

// queryDigest hashes the filters of a request.
func queryDigest(req *brokerv1.ListMachinesRequest) ([]byte, error) {
	q := proto.CloneOf(req)
	q.PageSize, q.PageToken = 0, ""
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("encoding the filters of a machine listing: %w", err)
	}
	sum := sha256.Sum256(raw)
	return sum[:queryDigestLen], nil
}

func (p pageTokens) mac(body []byte) []byte {
	h := hmac.New(sha256.New, p.key)
	h.Write(body)
	return h.Sum(nil)[:pageMACLen]
}

// issue returns the token of the page of req that follows cursor.
func (p pageTokens) issue(req *brokerv1.ListMachinesRequest, cursor string) (string, error) {
	digest, err := queryDigest(req)
	if err != nil {
		return "", err
	}
	body := append(append([]byte{pageTokenVersion}, digest...), cursor...)
	token := base64.RawURLEncoding.EncodeToString(append(body, p.mac(body)...))
	// A machine ID is its Node's name (at most 253 characters), so this
	// holds; but a token cursor would refuse must not be issued.
	if len(token) > maxPageTokenLen {
		return "", fmt.Errorf("the page token after machine %.40q... would be %d characters, more than the %d page tokens may have", cursor, len(token), maxPageTokenLen)
	}
	return token, nil
}

// cursor returns the cursor of req's page token ("" for the first page), or
// InvalidArgument saying what is wrong with the token.
func (p pageTokens) cursor(req *brokerv1.ListMachinesRequest) (string, error) {
	token := req.GetPageToken()
	if token == "" {
		return "", nil
	}
	const again = "pass next_page_token exactly as a response returned it, or list again from the first page"
	if len(token) > maxPageTokenLen {
		return "", invalid("page_token is %d characters long, and the tokens this broker issues are at most %d: %s", len(token), maxPageTokenLen, again)
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) <= 1+queryDigestLen+pageMACLen || raw[0] != pageTokenVersion {
		return "", invalid("page_token is not a token this broker issued (malformed or truncated): %s", again)
	}
	body, mac := raw[:len(raw)-pageMACLen], raw[len(raw)-pageMACLen:]
	if !hmac.Equal(mac, p.mac(body)) {
		return "", invalid("page_token is not a token this broker issued (altered, truncated, or issued before the broker restarted): %s", again)
	}
	digest, err := queryDigest(req)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(digest, body[1:1+queryDigestLen]) {
		return "", invalid("page_token was issued for another query: it continues only a listing with the same filters " +
			"(datacenter, maintenance_zone, state, sku, pool, unhealthy_only) as the request that returned it")
	}
	return string(body[1+queryDigestLen:]), nil
}
