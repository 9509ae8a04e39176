package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/jsii-runtime-go"
)

// goBundler builds one Lambda handler with the local Go toolchain, as
// `bootstrap` for provided.al2023 on arm64. It stands in for the alpha
// GoFunction construct, which is not published for Go, and needs no Docker.
type goBundler struct {
	moduleRoot string // the directory of go.mod
	pkg        string // the handler's main package, e.g. ./functions/initialize
}

// TryBundle implements awscdk.ILocalBundling (jsii calls it on a pointer).
func (b *goBundler) TryBundle(outputDir *string, _ *awscdk.BundlingOptions) *bool {
	cmd := exec.Command("go", "build",
		"-trimpath",
		// VCS stamps would change every binary, and so every asset, on each commit.
		"-buildvcs=false",
		"-tags", "lambda.norpc",
		"-ldflags=-s -w",
		"-o", filepath.Join(*outputDir, "bootstrap"),
		b.pkg)
	cmd.Dir = b.moduleRoot
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		// Returning false would make CDK fall back to Docker silently;
		// a panic stops synth with the compiler's message.
		panic(fmt.Sprintf("build %s: %v\n%s", b.pkg, err, out))
	}
	return jsii.Bool(true)
}

// goHandlerCode is the asset of the handler in functions/<name>. Each handler
// has its own source path, hence its own asset: CDK keys its bundling cache
// on path and options, and the Go bundler is not part of that key. The hash
// follows the binary, so a change in a shared package changes exactly the
// assets that link it.
func goHandlerCode(moduleRoot, name string) awslambda.Code {
	rel := "functions/" + name
	return awslambda.Code_FromAsset(jsii.String(filepath.Join(moduleRoot, rel)), &awss3assets.AssetOptions{
		AssetHashType: awscdk.AssetHashType_OUTPUT,
		Bundling: &awscdk.BundlingOptions{
			// Required by the API; never pulled, since the local build always
			// succeeds or stops synth.
			Image: awslambda.Runtime_PROVIDED_AL2023().BundlingImage(),
			Local: &goBundler{moduleRoot: moduleRoot, pkg: "./" + rel},
		},
	})
}
