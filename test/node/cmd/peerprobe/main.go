// Command peerprobe is a pod of another namespace calling the webhook's
// peer port as an intruder would: with a certificate from the chart's CA
// that names the webhook, and once without a token, once with its own
// ServiceAccount's token for the peers' audience. It prints each answer's
// status, one line each, for the node scenario to read:
//
//	no token: 401
//	own token: 403
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	url := flag.String("url", "", "the peer endpoint, https://<pod IP>:<port>/certbridge.peer/v1/<solver>")
	dir := flag.String("tls", "/tls", "directory of tls.crt, tls.key and ca.crt")
	serverName := flag.String("server-name", "", "the name the webhook's serving certificate carries")
	tokenFile := flag.String("token", "/token/token", "this pod's ServiceAccount token for the peers' audience")
	body := flag.String("body", "{}", "the challenge request to send")
	flag.Parse()
	cert, err := tls.LoadX509KeyPair(*dir+"/tls.crt", *dir+"/tls.key")
	if err != nil {
		fail(err)
	}
	caPEM, err := os.ReadFile(*dir + "/ca.crt")
	if err != nil {
		fail(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: *serverName, MinVersion: tls.VersionTLS12}}}
	token, err := os.ReadFile(*tokenFile)
	if err != nil {
		fail(err)
	}
	for _, try := range []struct{ name, token string }{{"no token", ""}, {"own token", strings.TrimSpace(string(token))}} {
		req, err := http.NewRequest(http.MethodPost, *url, bytes.NewReader([]byte(*body)))
		if err != nil {
			fail(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if try.token != "" {
			req.Header.Set("Authorization", "Bearer "+try.token)
		}
		resp, err := client.Do(req)
		if err != nil {
			fmt.Printf("%s: error %v\n", try.name, err)
			continue
		}
		resp.Body.Close()
		fmt.Printf("%s: %d\n", try.name, resp.StatusCode)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "peerprobe:", err)
	os.Exit(1)
}
