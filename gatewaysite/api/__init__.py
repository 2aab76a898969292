"""The admin API's shared pieces: its one door, its page envelope, its error shape,
its audit trail and its schema conventions. The apps' api/ packages build on them."""
