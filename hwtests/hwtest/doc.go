// Package hwtest holds the helpers of the real-kernel tests (build tag
// hwtests) that live outside package hwtests, such as the IOMMU backends'
// own guest tests: test files cannot be imported, so the helpers are a
// package of their own, built only with that tag.
package hwtest
