// Package docs holds no code: its tests check the repository's documentation, namely that every
// relative link in README.md and docs/*.md resolves (file and, for a "#fragment" into a Markdown
// file, heading) and that the README stays one screen long. It must not import anything of the project.
package docs
