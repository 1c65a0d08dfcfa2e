package broker

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
)

// Identity is who calls the broker: the subject of its client
// certificate, read as Kubernetes reads one: the common name is the name,
// the organizations are the groups.
type Identity struct {
	Name   string
	Groups []string
}

// String is the name, with the groups when there are any.
func (id Identity) String() string {
	if len(id.Groups) == 0 {
		return id.Name
	}
	return fmt.Sprintf("%s (groups %s)", id.Name, strings.Join(id.Groups, ","))
}

// Anonymous is every caller of a broker that authenticates nobody: one on
// a loopback address without client CA or token, for development and
// tests, or one told insecure.
var Anonymous = Identity{Name: "system:anonymous"}

type identityKey struct{}

// WithIdentity returns ctx carrying the caller's identity.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom is the caller's identity; Anonymous when none was
// authenticated.
func IdentityFrom(ctx context.Context) Identity {
	if id, ok := ctx.Value(identityKey{}).(Identity); ok {
		return id
	}
	return Anonymous
}

// actor is who a record says took a step: the authenticated identity's
// name, and the detail the request added (whom it acted for).
type actor struct {
	name, onBehalfOf string
}

// actorOf is the actor of a call: always the authenticated identity,
// never a request field; the request adds only detail.
func actorOf(ctx context.Context, onBehalfOf string) actor {
	return actor{name: IdentityFrom(ctx).Name, onBehalfOf: onBehalfOf}
}

// authenticator finds who calls: a client certificate signed by the
// client CA, else the static bearer token, else (when the broker was given
// neither) Anonymous.
type authenticator struct {
	// clientCAs verify client certificates; nil: none are asked for.
	clientCAs *x509.CertPool
	// token is the static bearer token; nil: none.
	token []byte
}

// anonymous says whether the broker authenticates nobody.
func (a *authenticator) anonymous() bool { return a.clientCAs == nil && a.token == nil }

func (a *authenticator) authenticate(ctx context.Context) (Identity, error) {
	if a.anonymous() {
		return Anonymous, nil
	}
	if p, ok := peer.FromContext(ctx); ok && a.clientCAs != nil {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
			return a.verify(info.State.PeerCertificates)
		}
	}
	if a.token != nil {
		md, _ := metadata.FromIncomingContext(ctx)
		for _, v := range md.Get("authorization") {
			if got, ok := strings.CutPrefix(v, "Bearer "); ok && subtle.ConstantTimeCompare([]byte(got), a.token) == 1 {
				return Identity{Name: configv1alpha1.StaticTokenUser}, nil
			}
		}
		if len(md.Get("authorization")) > 0 {
			return Identity{}, status.Error(codes.Unauthenticated, "the bearer token is not the broker's")
		}
	}
	if a.clientCAs == nil {
		return Identity{}, status.Error(codes.Unauthenticated, "no identity: the broker requires its bearer token (authorization: Bearer <token>)")
	}
	return Identity{}, status.Error(codes.Unauthenticated, "no identity: the broker requires a client certificate signed by its client CA")
}

// verify checks a client's certificate chain against the client CA (the
// TLS handshake only asked for it, so that a missing or unknown one is
// answered Unauthenticated rather than a failed handshake) and reads its
// subject.
func (a *authenticator) verify(chain []*x509.Certificate) (Identity, error) {
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: a.clientCAs, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return Identity{}, status.Errorf(codes.Unauthenticated, "client certificate %q is not one the broker trusts: %v", leaf.Subject.CommonName, err)
	}
	if leaf.Subject.CommonName == "" {
		return Identity{}, status.Error(codes.Unauthenticated, "the client certificate names no identity: its subject has no common name")
	}
	return Identity{Name: leaf.Subject.CommonName, Groups: leaf.Subject.Organization}, nil
}
