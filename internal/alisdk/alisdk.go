// Package alisdk holds what certbridge's Alibaba Cloud clients share on top
// of alibaba-cloud-sdk-go v1: a pool of clients (the SDK's client is not safe
// for concurrent use), a locked credentials provider, deadlines for calls
// that take no context, and reading the API's error codes.
package alisdk

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
)

// ClientsPerCredential bounds concurrent calls per credential; with
// ~100 ms per call it is above the busiest quota used (60 per second).
const ClientsPerCredential = 8

// Pool hands out clients one caller at a time: each SDK call rewrites its
// client's http.Client timeout and dialer.
type Pool[C any] struct {
	clients chan C
}

// NewPool builds ClientsPerCredential clients with build.
func NewPool[C any](build func() (C, error)) (*Pool[C], error) {
	p := &Pool[C]{clients: make(chan C, ClientsPerCredential)}
	for range ClientsPerCredential {
		c, err := build()
		if err != nil {
			return nil, err
		}
		p.clients <- c
	}
	return p, nil
}

// Timeouts is what SDK requests offer to bound a call.
type Timeouts interface {
	SetReadTimeout(time.Duration)
	SetConnectTimeout(time.Duration)
}

// With runs do with a client of the pool, bounding req by ctx's deadline:
// the v1 SDK takes no context.
func (p *Pool[C]) With(ctx context.Context, req Timeouts, do func(C) error) error {
	var c C
	select {
	case c = <-p.clients:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { p.clients <- c }()
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		if left <= 0 {
			return context.DeadlineExceeded
		}
		req.SetReadTimeout(left)
		req.SetConnectTimeout(min(left, 5*time.Second))
	}
	return do(c)
}

// Locked serialises credential refreshes: the SDK's providers update their
// cached session credentials without a lock.
func Locked(p credentials.CredentialsProvider) credentials.CredentialsProvider {
	return &lockedProvider{p: p}
}

type lockedProvider struct {
	mu sync.Mutex
	p  credentials.CredentialsProvider
}

func (l *lockedProvider) GetCredentials() (*credentials.Credentials, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.p.GetCredentials()
}

func (l *lockedProvider) GetProviderName() string { return l.p.GetProviderName() }

// Endpoint splits an operator's endpoint override into the SDK's scheme and
// host: "host[:port]" and "https://…" are HTTPS, "http://…" is HTTP.
func Endpoint(override, defaultHost string) (scheme, host string) {
	if override == "" {
		return "HTTPS", defaultHost
	}
	scheme, host = "HTTPS", override
	if rest, ok := strings.CutPrefix(host, "http://"); ok {
		scheme, host = "HTTP", rest
	}
	return scheme, strings.TrimSuffix(strings.TrimPrefix(host, "https://"), "/")
}

// Code is an Alibaba Cloud error's code ("" for none or a transport error).
func Code(err error) string {
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		return se.ErrorCode()
	}
	return ""
}

// Message is an Alibaba Cloud error's message.
func Message(err error) string {
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		return se.Message()
	}
	return ""
}

// Retryable is throttling, a concurrent write, or a server error.
func Retryable(err error) bool {
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		return false
	}
	switch se.ErrorCode() {
	case "Throttling.User", "Throttling", "Throttling.Api", "LastOperationNotFinished", "ServiceUnavailable", "InternalError":
		return true
	}
	return se.HttpStatus() >= http.StatusInternalServerError
}
