//! The statuses that cross the wire, each with its one spelling: in JSON (serde), in the
//! database of the service that owns it (rusqlite), and in messages.

service_kit::text_enum! {
    /// Where an order is in its life. order-service owns the transitions between them.
    OrderStatus {
        Pending => "PENDING",
        Paid => "PAID",
        Shipped => "SHIPPED",
        Delivered => "DELIVERED",
        Cancelled => "CANCELLED",
        Refunded => "REFUNDED",
    }
}

impl OrderStatus {
    /// True once the order has been paid for, whatever happened after.
    pub fn is_paid(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered
        )
    }
}

service_kit::text_enum! {
    /// What became of a payment attempt: `captured` (money taken for a verified order),
    /// `failed` (declined), `authorized` (taken while the order could not be verified:
    /// nothing captured until it is), `voided` (an authorization the order service refused).
    PaymentStatus {
        Captured => "captured",
        Failed => "failed",
        Authorized => "authorized",
        Voided => "voided",
    }
}

service_kit::text_enum! {
    /// Where a stock reservation is. catalog-service owns the rules between them.
    ReservationStatus {
        Reserved => "reserved",
        Committed => "committed",
        Released => "released",
    }
}

service_kit::text_enum! {
    /// Where an order's stock is. order-service holds it with the catalog under the order's
    /// `ref`: `pending` until the catalog has been asked, `held` while the order waits for
    /// its payment, `committed` once paid, `released` once cancelled. `untracked`: an order
    /// placed before orders held their own stock.
    OrderStock {
        Pending => "pending",
        Held => "held",
        Committed => "committed",
        Released => "released",
        Untracked => "untracked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_reads_back_what_it_writes_in_json_sql_and_text() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for status in OrderStatus::ALL {
            let json = serde_json::to_string(status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<OrderStatus>(&json).unwrap(), *status);
            let back: OrderStatus = conn
                .query_row("SELECT ?1", [status], |row| row.get(0))
                .unwrap();
            assert_eq!(back, *status);
            assert_eq!(
                status
                    .as_str()
                    .to_lowercase()
                    .parse::<OrderStatus>()
                    .unwrap(),
                *status
            );
        }
        for status in ReservationStatus::ALL {
            assert_eq!(ReservationStatus::parse(status.as_str()), Some(*status));
        }
        for stock in OrderStock::ALL {
            assert_eq!(OrderStock::parse(stock.as_str()), Some(*stock));
        }
        assert_eq!(
            serde_json::from_str::<PaymentStatus>("\"captured\"").unwrap(),
            PaymentStatus::Captured
        );
    }

    #[test]
    fn unknown_statuses_are_refused_with_the_choices() {
        let err = "LOST".parse::<OrderStatus>().unwrap_err().to_string();
        assert!(
            err.contains("PENDING, PAID, SHIPPED, DELIVERED, CANCELLED"),
            "{err}"
        );
        assert!(serde_json::from_str::<PaymentStatus>("\"refunded\"").is_err());
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let read: rusqlite::Result<OrderStatus> =
            conn.query_row("SELECT 'LOST'", [], |row| row.get(0));
        assert!(read.is_err());
    }

    #[test]
    fn the_openapi_schemas_name_the_values_sent_on_the_wire() {
        fn documented<T: utoipa::PartialSchema>() -> Vec<String> {
            let schema = serde_json::to_value(T::schema()).unwrap();
            schema["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("no enum in {schema}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        }
        let names = |all: &[&str]| all.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let orders: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(documented::<OrderStatus>(), names(&orders));
        let payments: Vec<&str> = PaymentStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(documented::<PaymentStatus>(), names(&payments));
        let reservations: Vec<&str> = ReservationStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(documented::<ReservationStatus>(), names(&reservations));
    }

    #[test]
    fn paid_means_paid_whatever_happened_after() {
        let paid: Vec<OrderStatus> = OrderStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.is_paid())
            .collect();
        assert_eq!(
            paid,
            [
                OrderStatus::Paid,
                OrderStatus::Shipped,
                OrderStatus::Delivered
            ]
        );
    }
}
