// Package cache is a bounded, concurrency-safe map for what certbridge keeps
// per credential: clients, zone lookups and record IDs. Everything in it can
// be rebuilt from the provider, so past its bound an arbitrary entry is
// dropped rather than letting rotating credentials grow the process.
package cache

import "sync"

// DefaultMax bounds a Map whose Max is zero.
const DefaultMax = 4096

// Map is a bounded map; the zero value is ready and holds DefaultMax entries.
type Map[V any] struct {
	// Max is the number of entries kept; zero means DefaultMax.
	Max int

	mu sync.Mutex
	m  map[string]V
}

// Get returns the entry for key.
func (c *Map[V]) Get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

// Put stores v under key.
func (c *Map[V]) Put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.makeRoom(key)
	c.m[key] = v
}

// Take returns and removes the entry for key.
func (c *Map[V]) Take(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	delete(c.m, key)
	return v, ok
}

// DeleteWhere removes every entry drop selects.
func (c *Map[V]) DeleteWhere(drop func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.m {
		if drop(v) {
			delete(c.m, k)
		}
	}
}

// GetOrCreate returns the entry for key, storing create's result when there
// is none; create runs under the map's lock, at most once per key.
func (c *Map[V]) GetOrCreate(key string, create func() V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[key]; ok {
		return v
	}
	c.makeRoom(key)
	v := create()
	c.m[key] = v
	return v
}

// Len is the number of entries.
func (c *Map[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *Map[V]) makeRoom(key string) {
	if c.m == nil {
		c.m = map[string]V{}
	}
	if _, ok := c.m[key]; ok {
		return
	}
	max := c.Max
	if max <= 0 {
		max = DefaultMax
	}
	for k := range c.m {
		if len(c.m) < max {
			return
		}
		delete(c.m, k)
	}
}
