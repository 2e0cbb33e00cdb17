package peers

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Endpoints are the replicas behind a Service: the ready endpoints of its
// EndpointSlices, each with the slice's port of the given name. The webhook
// watches its own Service, which the chart gives a port named "peer".
type Endpoints struct {
	set
	namespace, service, port string
}

// NewEndpoints are the endpoints of service's port in namespace. Members is
// empty until Watch has listed them, and the ring then holds only this
// replica, which serves everything itself.
func NewEndpoints(namespace, service, port string) *Endpoints {
	return &Endpoints{namespace: namespace, service: service, port: port}
}

// Watch follows the Service's EndpointSlices until ctx ends.
func (e *Endpoints) Watch(ctx context.Context, client kubernetes.Interface, log logr.Logger) {
	namespace, service, port := e.namespace, e.service, e.port
	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.Set{discoveryv1.LabelServiceName: service}.String()
		}))
	informer := factory.Discovery().V1().EndpointSlices()
	update := func() {
		slices, err := informer.Lister().EndpointSlices(namespace).List(labels.Everything())
		if err != nil {
			return
		}
		members := ready(slices, port)
		if e.replace(members) {
			log.Info("Peer replicas changed", "service", service, "namespace", namespace, "peers", members)
		}
	}
	_, _ = informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { update() },
		UpdateFunc: func(any, any) { update() },
		DeleteFunc: func(any) { update() },
	})
	factory.Start(ctx.Done())
}

// ready lists the host:port of every ready endpoint on the port named port.
// An endpoint whose ready condition is unknown counts as ready, as the
// EndpointSlice API says consumers should.
func ready(slices []*discoveryv1.EndpointSlice, port string) []string {
	var members []string
	for _, s := range slices {
		number := int32(0)
		for _, p := range s.Ports {
			if p.Name != nil && *p.Name == port && p.Port != nil {
				number = *p.Port
			}
		}
		if number == 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				members = append(members, net.JoinHostPort(a, strconv.Itoa(int(number))))
			}
		}
	}
	return members
}
