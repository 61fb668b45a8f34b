module github.com/hpc-copper/copper

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/bytedance/gopkg v0.1.1
	github.com/cespare/xxhash/v2 v2.3.0
	github.com/cloudwego/netpoll v0.7.2
	github.com/hanwen/go-fuse/v2 v2.12.1
	github.com/hashicorp/golang-lru/v2 v2.0.7
	github.com/spf13/pflag v1.1.0
	github.com/stretchr/testify v1.12.1
	golang.org/x/sync v0.25.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/cloudwego/gopkg v0.1.4 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
