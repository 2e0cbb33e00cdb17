package solver

import "sync"

// cache is a concurrency-safe map for the state kept per credential: zone
// lookups, record IDs, and the per-credential accounts themselves.
type cache[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

func (c *cache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

func (c *cache[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]V{}
	}
	c.m[key] = v
}

// take returns and removes the entry.
func (c *cache[V]) take(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	delete(c.m, key)
	return v, ok
}

// deleteWhere removes every entry drop selects.
func (c *cache[V]) deleteWhere(drop func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.m {
		if drop(v) {
			delete(c.m, k)
		}
	}
}

// getOrCreate returns the entry, creating it with create when absent. Past
// max entries an arbitrary one is dropped first: what it held is only a cache.
func (c *cache[V]) getOrCreate(key string, max int, create func() V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[key]; ok {
		return v
	}
	if c.m == nil {
		c.m = map[string]V{}
	}
	if len(c.m) >= max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	v := create()
	c.m[key] = v
	return v
}
