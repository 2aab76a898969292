"""The admin API's shared pieces: its one door, its page envelope, its error shape,
and its schema conventions (each write's history entry is written by its service,
through gatewaysite.history). The apps' api/ packages build on them."""
