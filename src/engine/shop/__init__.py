"""The shop: stock, payments, publishing to the sales channel, marketplace ratings and what processes leave behind."""
