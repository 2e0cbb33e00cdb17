package peers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/certbridge/certbridge/test/testutil"
)

// The replicas are the ready endpoints of the Service's EndpointSlices, as
// a real kube-apiserver serves them, and follow their changes.
func TestEndpoints_FollowTheServicesEndpointSlices(t *testing.T) {
	client := kubeClient(t)
	ctx := context.Background()
	const ns = "certbridge"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slice := func(name, service string, ready ...bool) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](8443)}, {Name: ptr.To("peer"), Port: ptr.To[int32](8444)}},
		}
		for i, r := range ready {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.0.0." + string(rune('1'+i))},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(r)}})
		}
		return s
	}
	slices := client.DiscoveryV1().EndpointSlices(ns)
	if _, err := slices.Create(ctx, slice("webhook-a", "certbridge-webhook", true, false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another Service's slice in the namespace.
	if _, err := slices.Create(ctx, slice("issuer-a", "certbridge-issuer-metrics", true, true, true), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	watchCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	e := NewEndpoints(ns, "certbridge-webhook", "peer")
	e.Watch(watchCtx, client, logr.Discard())
	members := func(want string) {
		t.Helper()
		testutil.Eventually(t, 30*time.Second, "members "+want, func() (bool, string) {
			got := strings.Join(e.Members(), ",")
			return got == want, got
		})
	}
	members("10.0.0.1:8444")
	if _, err := slices.Update(ctx, slice("webhook-a", "certbridge-webhook", true, true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	members("10.0.0.1:8444,10.0.0.2:8444")
	if err := slices.Delete(ctx, "webhook-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	members("")
}
