// Command sim runs the local simulators on loopback and prints their addresses,
// for manual runs and end-to-end tests:
//
//	go run ./test/sim/cmd/sim -zone example.com -alidns-domain example.net
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

func main() {
	zones := flag.String("zone", "example.com", "comma-separated zones of the simulated Cloudflare account")
	token := flag.String("token", "sim0token0with0zone0read0and0dns0edit000", "an API token with Zone Read and DNS Edit on every zone")
	dnsAddr := flag.String("dns", "127.0.0.1:0", "address of the DNS server (UDP and TCP)")
	rateLimit := flag.Int("rate-limit", 0, "Cloudflare requests per 5 minutes before 429 (0: unlimited)")
	aliDomains := flag.String("alidns-domain", "example.net", "comma-separated domains of the simulated Alibaba Cloud DNS account")
	akID := flag.String("access-key-id", "LTAI5tSimulatorKey000001", "AccessKey id allowed every alidns action")
	akSecret := flag.String("access-key-secret", "simulatorAccessKeySecret0000", "its AccessKey secret")
	flag.Parse()

	ali := alibaba.Start()
	defer ali.Close()
	for _, d := range strings.Split(*aliDomains, ",") {
		ali.AddDomain(strings.TrimSpace(d), alibaba.FreeEdition)
	}
	ali.AddAccessKey(alibaba.AccessKey{ID: *akID, Secret: *akSecret, Policy: alibaba.AllowAll})
	ali.AddCA("sim-root-ca", alibaba.CAOptions{})
	ali.AddCA("sim-sub-ca", alibaba.CAOptions{Parent: "sim-root-ca"})

	sim := cfsim.Start()
	defer sim.Close()
	for _, z := range strings.Split(*zones, ",") {
		sim.AddZone(strings.TrimSpace(z))
	}
	sim.AddToken(cfsim.Token{Value: *token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit, cfsim.SSLEdit}})
	if *rateLimit > 0 {
		sim.SetRateLimit(cfsim.RateLimit{Limit: *rateLimit, Window: cfsim.CloudflareRateLimit.Window})
	}
	dns, err := dnsserver.StartOn(*dnsAddr, dnsserver.Sources{sim, ali})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer dns.Close()

	fmt.Printf("CLOUDFLARE_API_URL=%s\n", sim.URL())
	fmt.Printf("DNS_SERVER=%s\n", dns.Addr)
	fmt.Printf("ZONES=%s\n", *zones)
	fmt.Printf("ALIDNS_ENDPOINT=http://%s\n", ali.Endpoint())
	fmt.Printf("ALIBABA_STS_ENDPOINT=%s\n", ali.STSEndpoint())
	fmt.Printf("ALIDNS_DOMAINS=%s\n", *aliDomains)
	fmt.Printf("PCA_CA_IDENTIFIER=sim-sub-ca\n")
	fmt.Println("ready; Ctrl-C stops")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
}
