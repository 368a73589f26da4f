module github.com/billsync/billsync

go 1.26.0
