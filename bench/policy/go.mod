module github.com/kaginashi/kaginashi/bench/policy

go 1.26.8

require (
	github.com/kaginashi/kaginashi v0.0.0-00010101000000-000000000000
	github.com/minio/pkg/v3 v3.1.3
)

require (
	github.com/goccy/go-json v0.10.5 // indirect
	github.com/minio/minio-go/v7 v7.0.88 // indirect
)

replace github.com/kaginashi/kaginashi => ../..
