//! [`text_enum!`](crate::text_enum): an enum that is stored and sent as text, written once.

/// Writes out an enum that is stored and sent as text (a status, a step): its variants with
/// their one spelling, `ALL`, `as_str`, `parse`, `Display`, `FromStr` (a 422 naming the
/// choices), serde, the OpenAPI schema and the SQL conversions. The crate using it depends
/// on serde, utoipa and rusqlite, as every service does.
#[macro_export]
macro_rules! text_enum {
    // `$text` is a `tt`, not a `literal`: utoipa cannot read a `literal` fragment inside
    // `#[serde(rename = ..)]` and would document the variant's Rust name instead.
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every variant, in the order written (a status: its lifecycle order).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Its spelling in JSON and in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Reads its exact spelling.
            pub fn parse(text: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|s| s.as_str() == text)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Reads a value a client sent, whatever its case; a 422 naming the choices if
        /// it is none of them.
        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::Invalid;
            fn from_str(s: &str) -> ::std::result::Result<Self, $crate::domain::Invalid> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|status| status.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| {
                        let names: ::std::vec::Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                        $crate::domain::Invalid(format!(
                            "unknown status '{}'; expected one of {}",
                            s.chars().take(40).collect::<::std::string::String>(),
                            names.join(", ")
                        ))
                    })
            }
        }

        impl ::rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> ::rusqlite::Result<::rusqlite::types::ToSqlOutput<'_>> {
                Ok(::rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl ::rusqlite::types::FromSql for $name {
            fn column_result(
                value: ::rusqlite::types::ValueRef<'_>,
            ) -> ::rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::parse(text).ok_or_else(|| {
                    ::rusqlite::types::FromSqlError::Other(format!("unknown {} '{text}'", stringify!($name)).into())
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::text_enum! {
        /// A test enum.
        Light {
            Red => "red",
            Green => "GREEN",
        }
    }

    #[test]
    fn a_text_enum_reads_back_what_it_writes_in_json_sql_and_text() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for light in Light::ALL {
            let json = serde_json::to_string(light).unwrap();
            assert_eq!(json, format!("\"{light}\""));
            assert_eq!(serde_json::from_str::<Light>(&json).unwrap(), *light);
            let back: Light = conn.query_row("SELECT ?1", [light], |r| r.get(0)).unwrap();
            assert_eq!(back, *light);
            assert_eq!(Light::parse(light.as_str()), Some(*light));
        }
        assert_eq!(Light::parse("Red"), None, "parse is exact");
        assert_eq!(
            "green".parse::<Light>().unwrap(),
            Light::Green,
            "FromStr is not"
        );
        assert!(matches!(
            "blue".parse::<Light>(),
            Err(crate::domain::Invalid(_))
        ));
        let stored: rusqlite::Result<Light> = conn.query_row("SELECT 'blue'", [], |r| r.get(0));
        assert!(stored.is_err());
    }
}
