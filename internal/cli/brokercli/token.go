package brokercli

import "context"

// bearer sends a bearer token with every call, streams included.
type bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: a
// loopback broker may run without TLS.
func (bearer) RequireTransportSecurity() bool { return false }
