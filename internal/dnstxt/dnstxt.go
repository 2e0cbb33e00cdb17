// Package dnstxt reads TXT record content in the presentation form Cloudflare
// stores: either one bare string, or RFC 1035 quoted character-strings.
package dnstxt

import "strings"

// Split returns content's character-strings. Quoted content ("a" "b") is
// parsed as RFC 1035 strings; bare content is one string, cut into 255-byte
// pieces as DNS requires. ok is false for inconsistent quoting.
func Split(content string) (parts []string, ok bool) {
	if !strings.HasPrefix(content, `"`) {
		return chunk(content), true
	}
	rest := content
	for {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			return parts, true
		}
		if rest[0] != '"' {
			return nil, false
		}
		var b strings.Builder
		closed := false
		i := 1
		for ; i < len(rest); i++ {
			c := rest[i]
			if c == '\\' && i+1 < len(rest) {
				i++
				b.WriteByte(rest[i])
				continue
			}
			if c == '"' {
				closed = true
				break
			}
			b.WriteByte(c)
		}
		if !closed {
			return nil, false
		}
		parts = append(parts, chunk(b.String())...)
		rest = rest[i+1:]
	}
}

// Value is the text a resolver sees: the character-strings joined.
func Value(content string) string {
	parts, ok := Split(content)
	if !ok {
		return content
	}
	return strings.Join(parts, "")
}

// Quote renders value as quoted content, the form Cloudflare's schema asks for.
func Quote(value string) string {
	var b strings.Builder
	for _, part := range chunk(value) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(part))
		b.WriteByte('"')
	}
	return b.String()
}

func chunk(s string) []string {
	if len(s) <= 255 {
		return []string{s}
	}
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}
