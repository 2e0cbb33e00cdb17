// Package peers lets the webhook's replicas send each zone's challenges to
// one of them. The aggregated API spreads cert-manager's Presents and
// CleanUps over every replica at random, so without it each replica sees a
// third of a zone's changes (with three replicas) and batches a third as
// many into one Cloudflare call, and a CleanUp mostly lands on a replica
// that does not know the record's ID and must list the zone to find it.
//
// The replica that receives a request works out which replica owns the
// request's zone (rendezvous hashing over the replicas that are ready) and
// hands the request to it over mutually authenticated TLS, with a token of
// the webhook's ServiceAccount (auth.go); the owner serves it as if the
// aggregated API had sent it there, reading the Secret itself. Only the
// webhook's own ServiceAccount is served: the peer port admits nothing the
// aggregated API would refuse.
// Nothing is coordinated beyond that: when the replicas disagree on who is
// ready, or the owner does not take the request within a fifth of its
// deadline, a replica serves the request itself with the rest.
// Present and CleanUp are idempotent, so a request served twice (an answer
// lost on the way back) is harmless.
package peers

import (
	"hash/fnv"
	"slices"
	"sync"
)

// Members is the set of replicas, each as the host:port of its peer
// listener.
type Members interface {
	Members() []string
}

// Static is a fixed set of replicas, for runs outside Kubernetes.
type Static []string

// Members returns the set.
func (s Static) Members() []string { return s }

// Ring tells which replica owns a key.
type Ring struct {
	self    string
	members Members
}

// NewRing is the ring of members as seen from self, which is always part of
// it, listed or not (a replica not ready yet is not in its Service's
// endpoints, but serves what it is sent).
func NewRing(self string, members Members) *Ring {
	return &Ring{self: self, members: members}
}

// Self is this replica's address.
func (r *Ring) Self() string { return r.self }

// Owner returns the replica that owns key: the member with the highest
// hash of (member, key). Adding or removing a replica moves only the keys
// it wins or owned.
func (r *Ring) Owner(key string) string {
	owner, best := r.self, score(r.self, key)
	for _, m := range r.members.Members() {
		if s := score(m, key); s > best || (s == best && m < owner) {
			owner, best = m, s
		}
	}
	return owner
}

func score(member, key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	// fnv's low bits mix poorly for short, similar inputs: finish with a
	// 64-bit mixer (splitmix64's).
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// set is a Members that changes, safe for concurrent use.
type set struct {
	mu      sync.RWMutex
	members []string
}

func (s *set) Members() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.members
}

func (s *set) replace(members []string) bool {
	slices.Sort(members)
	members = slices.Compact(members)
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(s.members, members) {
		return false
	}
	s.members = members
	return true
}
