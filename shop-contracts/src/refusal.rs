//! How a call's refusals are written once for both ends: [`refusals!`] declares a call's
//! refusal enum with one `(status, code)` per variant. The server answers a variant with
//! that status and code (`ApiError::from`); the client reads the peer's answer back into the
//! same variant (`From<Refusal>`). Nobody else reads a peer's status code.

/// Declares a call's refusal enum: each variant carries the message, and has one status and
/// one code. Two variants are added to every enum: `NotSent` (the request never reached
/// the peer, which therefore did nothing) and `Other` (a refusal the table does not name:
/// an older or newer peer, or a 401/403/429 about the request itself; the peer did nothing
/// either). The server never answers with those two.
#[macro_export]
macro_rules! refusals {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = ($status:literal, $code:literal), )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant(String), )+
            /// The request never reached the peer: it did nothing.
            NotSent(String),
            /// A refusal this contract does not name: the peer did nothing.
            Other {
                /// The peer's code.
                code: String,
                /// The peer's message.
                message: String,
            },
        }

        impl $name {
            /// Every named variant's status and code: the contract's table.
            pub const TABLE: &'static [(&'static str, u16, &'static str)] =
                &[ $( (stringify!($variant), $status, $code), )+ ];

            /// The status and code the server answers this refusal with.
            pub fn status_and_code(&self) -> (u16, &'static str) {
                match self {
                    $( $name::$variant(_) => ($status, $code), )+
                    $name::NotSent(_) => (503, "unavailable"),
                    $name::Other { .. } => (409, "conflict"),
                }
            }

            /// The reason, in words.
            pub fn message(&self) -> &str {
                match self {
                    $( $name::$variant(message) )|+ | $name::NotSent(message) => message,
                    $name::Other { message, .. } => message,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.message())
            }
        }

        impl From<service_kit::peer::Refusal> for $name {
            fn from(refusal: service_kit::peer::Refusal) -> Self {
                let status = refusal.status();
                let service_kit::peer::Refusal { code, message, .. } = refusal;
                match (status, code.as_str()) {
                    $( (Some($status), $code) => $name::$variant(message), )+
                    (None, _) => $name::NotSent(message),
                    _ => $name::Other { code, message },
                }
            }
        }

        impl From<$name> for service_kit::ApiError {
            fn from(refused: $name) -> Self {
                match refused {
                    $name::NotSent(message) => service_kit::ApiError::Unavailable(message),
                    $name::Other { message, .. } => service_kit::ApiError::Conflict(message),
                    named => {
                        let (status, code) = named.status_and_code();
                        service_kit::ApiError::Refused {
                            status,
                            code,
                            message: named.message().to_string(),
                        }
                    }
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use service_kit::peer::Refusal;

    crate::refusals! {
        /// For the test.
        pub enum Asked {
            /// Gone.
            Gone = (404, "not_found"),
            /// Taken.
            Taken = (409, "taken"),
        }
    }

    #[test]
    fn each_variant_goes_out_with_its_status_and_code_and_comes_back_as_itself() {
        for (variant, status, code) in Asked::TABLE {
            let refused = match *variant {
                "Gone" => Asked::Gone("m".into()),
                _ => Asked::Taken("m".into()),
            };
            let (status_out, code_out) =
                service_kit::ApiError::from(refused.clone()).status_and_code();
            assert_eq!((status_out.as_u16(), code_out), (*status, *code));
            let read = Asked::from(Refusal::answered(*status, code, "m"));
            assert_eq!(read, refused);
        }
    }

    #[test]
    fn a_refusal_the_table_does_not_name_is_other_and_one_never_sent_is_not_sent() {
        let read = Asked::from(Refusal::answered(409, "conflict", "older peer"));
        assert_eq!(
            read,
            Asked::Other {
                code: "conflict".into(),
                message: "older peer".into()
            }
        );
        let read = Asked::from(Refusal::answered(429, "rate_limited", "slow down"));
        assert!(matches!(read, Asked::Other { .. }));
    }
}
