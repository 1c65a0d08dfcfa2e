// Command etcd builds etcd's server from the pinned go.etcd.io/etcd/server/v3
// module, so the local datacenter needs no release download.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
